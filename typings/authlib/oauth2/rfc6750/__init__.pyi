from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6750.errors import InvalidTokenError as InvalidTokenError

class BearerTokenGenerator:
    def __init__(
        self,
        access_token_generator: Callable[..., str],
        refresh_token_generator: Callable[..., str] | None = None,
        expires_generator: Callable[[Any, str], int] | int | None = None,
    ) -> None: ...

class BearerTokenValidator:
    TOKEN_TYPE: str
    realm: str | None
    def validate_request(self, request: Any) -> None: ...
    def __init__(self, realm: str | None = None, **extra_attributes: Any) -> None: ...
    def authenticate_token(self, token_string: str) -> Any: ...
    def validate_token(self, token: Any, scopes: Any, request: Any) -> None: ...
