# Typed stubs for the part of Authlib 1.9 that idp uses (Authlib ships no type information).
# Only what idp.oidc touches is declared; see typings/README.md.
