"""``python -m airflow_provider_whatsapp.sandbox``: the same as ``whatsapp-sandbox``."""

from __future__ import annotations

from airflow_provider_whatsapp.sandbox.cli import main

raise SystemExit(main())
