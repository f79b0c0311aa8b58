"""Development OpenID Connect provider for ConvoSuite (run with ``python -m devtools.idp``).

A standalone Django project on django-oauth-toolkit with its own settings and SQLite
database; it never imports the main application. Development and tests only.
"""
