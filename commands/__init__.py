"""Thin click commands over plain functions; app.py registers them on `flask --app app`."""
