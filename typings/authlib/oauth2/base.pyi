from typing import Any

class OAuth2Error(Exception):
    error: str | None
    description: str
    uri: str | None
    status_code: int
    state: str | None
    redirect_uri: str | None
    redirect_fragment: bool
    def __init__(
        self,
        description: str | None = None,
        uri: str | None = None,
        status_code: int | None = None,
        state: str | None = None,
        redirect_uri: str | None = None,
        redirect_fragment: bool = False,
        error: str | None = None,
    ) -> None: ...
    def get_error_description(self) -> str: ...
    def get_body(self) -> list[tuple[str, Any]]: ...
    def get_headers(self) -> list[tuple[str, str]]: ...
    def __call__(self, uri: str | None = None) -> tuple[int, Any, list[tuple[str, str]]]: ...
