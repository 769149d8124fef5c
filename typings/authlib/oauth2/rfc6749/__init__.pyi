from authlib.oauth2.rfc6749 import grants as grants
from authlib.oauth2.rfc6749.errors import InvalidClientError as InvalidClientError
from authlib.oauth2.rfc6749.models import ClientMixin as ClientMixin
from authlib.oauth2.rfc6749.requests import OAuth2Request as OAuth2Request
