"""The source interface's web layer: sessions, security policy, request context, pages and the
submission paths (tus uploads and the plain form, :mod:`dropbox.web.api`).

Views here stay thin: they gather inputs from the request and call the use cases in
:mod:`dropbox.sources`, :mod:`dropbox.submissions`, :mod:`dropbox.nojs` and :mod:`dropbox.tus`.
"""
