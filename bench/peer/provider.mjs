// node-oidc-provider as the peer of bench/peer_compare.py.
//
//   PORT=4000 CLIENT_JWKS='{"keys":[...]}' node bench/peer/provider.mjs
//
// In-memory store (the library's default adapter), the development interactions (a login form
// that accepts any login, then a consent form), PKCE required for every client, ES256 ID tokens
// (the same key type as myna-idp's default), one confidential client "bench" authenticating
// with private_key_jwt (ES256) like the bench client of myna-idp. Listens on 127.0.0.1 only.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
if (!port) {
  throw new Error('set PORT');
}
const issuer = `http://127.0.0.1:${port}`;
const clientJwks = JSON.parse(process.env.CLIENT_JWKS);
const redirectUri = process.env.REDIRECT_URI || 'https://forms.bench.example.jp/callback';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: 'peer-es256',
  alg: 'ES256',
  use: 'sig',
};

// The same facts myna-idp releases for scope "openid name address birthdate gender".
const claims = {
  name: '山田　太郎',
  birthdate: '1985-04-01',
  gender: 'male',
  address: { formatted: '石川県加賀市大聖寺南町ニ４１番地' },
};

const configuration = {
  clients: [
    {
      client_id: 'bench',
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      id_token_signed_response_alg: 'ES256',
      jwks: clientJwks,
    },
  ],
  jwks: { keys: [signingKey] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'address'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'birthdate', 'gender'],
    address: ['address'],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // Explicit lifetimes (the library's defaults, said once so it prints no notice per kind).
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    Grant: 1209600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 1209600,
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, ...claims };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, error) => {
  console.error('server_error', error);
});
provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
