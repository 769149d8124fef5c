from collections.abc import Mapping
from typing import Any

class OAuth2Payload:
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def datalist(self) -> Mapping[str, list[Any]]: ...
    @property
    def client_id(self) -> Any: ...
    @property
    def response_type(self) -> Any: ...
    @property
    def grant_type(self) -> Any: ...
    @property
    def redirect_uri(self) -> Any: ...
    @property
    def scope(self) -> Any: ...
    @property
    def state(self) -> Any: ...

class BasicOAuth2Payload(OAuth2Payload):
    def __init__(self, payload: Mapping[str, Any]) -> None: ...

class OAuth2Request:
    method: str
    uri: str
    headers: Any
    payload: OAuth2Payload | None
    client: Any
    auth_method: str | None
    user: Any
    authorization_code: Any
    refresh_token: Any
    scope: Any
    def __init__(self, method: str, uri: str, body: Any = None, headers: Any = None) -> None: ...
    @property
    def form(self) -> Any: ...
    @property
    def args(self) -> Any: ...
