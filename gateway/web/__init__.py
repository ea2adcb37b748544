"""The HTTP side: the hot path (`edge`), the app around it, admin, and OpenAI's wire format.

Errors become wire format here only.
"""
