"""Where requests go by default. Imports nothing: provider info (the connection form) reads these while
Airflow itself is still importing, before the rest of the provider can be imported."""

from __future__ import annotations

DEFAULT_HOST = "https://api.maton.ai"
DEFAULT_APP = "whatsapp-business"
#: The ``app`` value meaning Meta's Graph API directly, as a connection form can write it (it cannot save "").
GRAPH_DIRECT_APP = "none"
DEFAULT_API_VERSION = "v21.0"
