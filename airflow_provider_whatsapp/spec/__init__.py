"""WhatsApp's rules, once: the only place the provider, its bulk engine and its sandbox learn them.

- :mod:`.limits`: numbers (lengths, counts, sizes, ranges) and rates;
- :mod:`.vocabulary`: every list of allowed values (message and interactive types, template parts,
  categories, header formats, button types, statuses);
- :mod:`.grammar`: rules on text (placeholders, template names, recipients, emoji, URLs, blank text);
- :mod:`.interactive_actions`: the action of each interactive type the provider sends as given, checked
  the same way by the message models and the sandbox;
- :mod:`.error_codes`: Graph's error codes with their class, kind, HTTP status, title and advice.

Nothing here imports Airflow, pydantic or the rest of the provider: the models turn a broken rule into a
``WhatsAppValidationError``, the sandbox into Graph's error body.
"""
