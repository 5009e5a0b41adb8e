"""HTTP adapters: hooks (inbound webhooks), api (JSON for operators), health."""
