"""OpenID Connect on Authlib: the authorization server, its grants and checks, ID tokens, keys,
discovery, userinfo, and the seam (:mod:`idp.oidc.authorize`) where the card login plugs in.

``idp.oidc.routes.init_app(app)`` wires it all into an app.
"""
