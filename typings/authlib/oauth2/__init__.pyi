from authlib.oauth2.base import OAuth2Error as OAuth2Error
