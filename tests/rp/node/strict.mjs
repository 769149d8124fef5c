// Every protocol flow through a strict third-party RP library, against a live provider.
//
//   node strict.mjs LIB CONFIG_JSON     (LIB: oauth4webapi | openid-client)
//
// CONFIG_JSON: {issuer, client_id, redirect_uri, jwk (private, EC P-256), rs_client_id,
// rs_secret, scope, claims}. The RP discovers the provider, pushes a signed request object
// (JAR inside PAR) with PKCE S256, state, nonce, the claims parameter and a DPoP key
// (dpop_jkt), and prints {"authorization_url"}. It reads the callback URL from stdin, then:
// code grant (private_key_jwt, DPoP; ID token signature, iss, aud, nonce, RFC 9207 iss all
// checked), userinfo with DPoP, refresh (rotation: a new refresh token), userinfo with the
// refreshed DPoP token, introspection by a resource-server client (client_secret_basic),
// revocation of the refresh token, introspection of it afterwards, and the replay of the first
// refresh token. Prints one JSON line with what it saw, or {"error", "code", "cause"}.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import * as oauth from "oauth4webapi";
import * as client from "openid-client";

const [lib, configFile] = process.argv.slice(2);
const cfg = JSON.parse(readFileSync(configFile, "utf8"));

async function importKey(jwk) {
  const { d, ...publicJwk } = jwk;
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  return {
    privateKey: await crypto.subtle.importKey("jwk", jwk, alg, false, ["sign"]),
    publicKey: await crypto.subtle.importKey("jwk", publicJwk, alg, true, ["verify"]),
  };
}

async function readCallback() {
  const lines = createInterface({ input: process.stdin });
  const line = await new Promise((resolve) => lines.once("line", resolve));
  lines.close();
  return new URL(line);
}

function say(doc) {
  process.stdout.write(JSON.stringify(doc) + "\n");
}

async function expectError(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return error.error ?? error.cause?.error ?? error.code ?? String(error);
  }
}

// -- oauth4webapi ------------------------------------------------------------------------------

async function withOauth4webapi() {
  const issuer = new URL(cfg.issuer);
  const insecure = { [oauth.allowInsecureRequests]: true }; // http on loopback (test provider)
  const as = await oauth.processDiscoveryResponse(
    issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: "oidc" }));
  const rp = { client_id: cfg.client_id, id_token_signed_response_alg: "ES256" };
  const keys = await importKey(cfg.jwk);
  const clientAuth = oauth.PrivateKeyJwt({ key: keys.privateKey, kid: cfg.jwk.kid });
  const dpopKeys = await oauth.generateKeyPair("ES256");
  const dpop = oauth.DPoP(rp, dpopKeys);

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const params = new URLSearchParams({
    client_id: cfg.client_id,
    redirect_uri: cfg.redirect_uri,
    response_type: "code",
    scope: cfg.scope,
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    claims: JSON.stringify(cfg.claims),
  });
  const request = await oauth.issueRequestObject(as, rp, params, { key: keys.privateKey, kid: cfg.jwk.kid });
  const pushedParams = new URLSearchParams({ client_id: cfg.client_id, request });
  let pushed = await oauth.pushedAuthorizationRequest(as, rp, clientAuth, pushedParams, { ...insecure, DPoP: dpop });
  let par;
  try {
    par = await oauth.processPushedAuthorizationResponse(as, rp, pushed);
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    pushed = await oauth.pushedAuthorizationRequest(as, rp, clientAuth, pushedParams, { ...insecure, DPoP: dpop });
    par = await oauth.processPushedAuthorizationResponse(as, rp, pushed);
  }
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set("client_id", cfg.client_id);
  url.searchParams.set("request_uri", par.request_uri);
  say({ authorization_url: url.href });

  const callback = await readCallback();
  const callbackParams = oauth.validateAuthResponse(as, rp, callback, state);
  const grant = () => oauth.authorizationCodeGrantRequest(
    as, rp, clientAuth, callbackParams, cfg.redirect_uri, verifier, { ...insecure, DPoP: dpop });
  let tokenResponse = await grant();
  let tokens;
  try {
    tokens = await oauth.processAuthorizationCodeResponse(as, rp, tokenResponse, {
      expectedNonce: nonce, requireIdToken: true });
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    tokenResponse = await grant();
    tokens = await oauth.processAuthorizationCodeResponse(as, rp, tokenResponse, {
      expectedNonce: nonce, requireIdToken: true });
  }
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  // The ID token's signature, against the provider's JWKS (oauth4webapi leaves it optional).
  await oauth.validateApplicationLevelSignature(as, tokenResponse, insecure);

  const userinfo = await userinfoWith(as, rp, tokens.access_token, claims.sub, dpop, insecure);

  const refreshed = await retryNonce(async () => oauth.processRefreshTokenResponse(as, rp,
    await oauth.refreshTokenGrantRequest(as, rp, clientAuth, tokens.refresh_token, { ...insecure, DPoP: dpop })));
  const userinfo2 = await userinfoWith(as, rp, refreshed.access_token, claims.sub, dpop, insecure);

  const rs = { client_id: cfg.rs_client_id };
  const rsAuth = oauth.ClientSecretBasic(cfg.rs_secret);
  const introspected = await oauth.processIntrospectionResponse(as, rs,
    await oauth.introspectionRequest(as, rs, rsAuth, refreshed.access_token, insecure));

  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, rp, clientAuth, refreshed.refresh_token, insecure));
  const afterRevocation = await oauth.processIntrospectionResponse(as, rp,
    await oauth.introspectionRequest(as, rp, clientAuth, refreshed.refresh_token, insecure));
  const replay = await expectError((async () => oauth.processRefreshTokenResponse(as, rp,
    await oauth.refreshTokenGrantRequest(as, rp, clientAuth, tokens.refresh_token, { ...insecure, DPoP: dpop })))());

  return {
    token_type: tokens.token_type, claims, userinfo, userinfo_after_refresh: userinfo2,
    rotated: refreshed.refresh_token !== tokens.refresh_token && Boolean(refreshed.refresh_token),
    refreshed_token_type: refreshed.token_type, introspected,
    refresh_active_after_revocation: afterRevocation.active, replay_error: replay,
  };

  async function retryNonce(run) {
    try {
      return await run();
    } catch (error) {
      if (!oauth.isDPoPNonceError(error)) throw error;
      return run();
    }
  }
}

async function userinfoWith(as, rp, accessToken, sub, dpop, insecure) {
  const call = async () => oauth.processUserInfoResponse(as, rp, sub,
    await oauth.userInfoRequest(as, rp, accessToken, { ...insecure, DPoP: dpop }));
  try {
    return await call();
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    return call();
  }
}

// -- openid-client -----------------------------------------------------------------------------

async function withOpenidClient() {
  const keys = await importKey(cfg.jwk);
  const insecure = { execute: [client.allowInsecureRequests] }; // http on loopback only
  const config = await client.discovery(new URL(cfg.issuer), cfg.client_id,
    { id_token_signed_response_alg: "ES256" },
    client.PrivateKeyJwt({ key: keys.privateKey, kid: cfg.jwk.kid }), insecure);
  client.enableNonRepudiationChecks(config); // verify ID token signatures (JWKS)
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: cfg.redirect_uri,
    scope: cfg.scope,
    state,
    nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    claims: JSON.stringify(cfg.claims),
  };
  const jar = await client.buildAuthorizationUrlWithJAR(config, params,
    { key: keys.privateKey, kid: cfg.jwk.kid });
  const url = await client.buildAuthorizationUrlWithPAR(config, jar.searchParams, { DPoP: dpop });
  say({ authorization_url: url.href });

  const callback = await readCallback();
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, { DPoP: dpop });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP: dpop });

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop });
  const userinfo2 = await client.fetchUserInfo(config, refreshed.access_token, claims.sub, { DPoP: dpop });

  const rsConfig = new client.Configuration(config.serverMetadata(), cfg.rs_client_id,
    cfg.rs_secret, client.ClientSecretBasic(cfg.rs_secret));
  client.allowInsecureRequests(rsConfig);
  const introspected = await client.tokenIntrospection(rsConfig, refreshed.access_token);

  await client.tokenRevocation(config, refreshed.refresh_token);
  const afterRevocation = await client.tokenIntrospection(config, refreshed.refresh_token);
  const replay = await expectError(client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop }));

  return {
    token_type: tokens.token_type, claims, userinfo, userinfo_after_refresh: userinfo2,
    rotated: refreshed.refresh_token !== tokens.refresh_token && Boolean(refreshed.refresh_token),
    refreshed_token_type: refreshed.token_type, introspected,
    refresh_active_after_revocation: afterRevocation.active, replay_error: replay,
  };
}

try {
  const result = lib === "oauth4webapi" ? await withOauth4webapi() : await withOpenidClient();
  say(result);
} catch (error) {
  const cause = error.cause ? `${error.cause.name ?? ""}: ${error.cause.message ?? JSON.stringify(error.cause)}` : null;
  say({ error: `${error.name}: ${error.message}`, code: error.code ?? null, cause });
  process.exit(1);
}
