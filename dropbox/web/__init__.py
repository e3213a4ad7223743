"""The source interface's web layer: sessions, security policy, request context and pages.

Views here stay thin: they gather inputs from the request and call the use cases in
:mod:`dropbox.sources`, :mod:`dropbox.submissions` and :mod:`dropbox.instance`.
"""
