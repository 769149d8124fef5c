// A strict third-party relying party on openid-client (npm), driven by tests/rp/test_openid_client.py.
//
//   node rp.mjs ISSUER CLIENT_ID REDIRECT_URI PRIVATE_JWK_FILE
//
// 1. discovery, then prints {"authorization_url": ...} on stdout (PKCE S256, state, nonce);
// 2. reads the callback URL (one line) on stdin;
// 3. redeems the code with private_key_jwt, checks the ID token (signature against the JWKS,
//    iss, aud, nonce, exp; RFC 9207 iss on the callback), reads userinfo, prints
//    {"claims": ..., "userinfo": ...}. Any failure: {"error": ...} and exit status 1.
import * as client from "openid-client";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const [issuer, clientId, redirectUri, jwkFile] = process.argv.slice(2);

async function main() {
  const jwk = JSON.parse(readFileSync(jwkFile, "utf8"));
  const key = await crypto.subtle.importKey(
    "jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    { id_token_signed_response_alg: "ES256" },
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
    { execute: [client.allowInsecureRequests] }, // http on loopback only (the test provider)
  );
  client.enableNonRepudiationChecks(config); // verify the ID token's signature (JWKS)

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid name address birthdate gender",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  process.stdout.write(JSON.stringify({ authorization_url: url.href }) + "\n");

  const lines = createInterface({ input: process.stdin });
  const callback = await new Promise((resolve) => lines.once("line", resolve));
  lines.close();

  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  process.stdout.write(JSON.stringify({ claims, userinfo }) + "\n");
}

main().catch((error) => {
  const cause = error.cause ? `${error.cause.name}: ${error.cause.message}` : null;
  process.stdout.write(JSON.stringify({ error: `${error.name}: ${error.message}`,
                                        code: error.code ?? null, cause }) + "\n");
  process.exit(1);
});
