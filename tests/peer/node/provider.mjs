// node-oidc-provider on loopback: the certified peer the differential negative-test matrix
// (tests/oidc/test_differential.py) sends every case to.
//
//   node provider.mjs CLIENTS_JSON [PORT]      (PORT 0 or absent: a free port)
//
// Prints one JSON line {"issuer": "http://127.0.0.1:PORT"} once it listens, then serves until
// stdin closes or it is killed. In-memory store (the package's default adapter), the clients
// from CLIENTS_JSON, PKCE required for every client, PAR, JAR, DPoP, the claims parameter,
// revocation and introspection on, refresh tokens rotated on every use. Interactions are
// programmatic: /interaction/<uid> logs the test resident in and grants what was asked for,
// so a code flow completes without a browser (GET /auth -> /interaction/<uid> -> /auth/<uid>
// -> the client's redirect URI with a code).
import { createServer } from "node:http";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [clientsFile, portArg] = process.argv.slice(2);
const clients = JSON.parse(readFileSync(clientsFile, "utf8"));
const port = Number(portArg ?? process.env.PEER_PORT ?? 0);

const signingKeys = [
  generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }),
  generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }),
].map((jwk, i) => ({ ...jwk, kid: `peer-${i}`, use: "sig" }));

const RESIDENT = {
  sub: "resident-1",
  name: "山田　太郎",
  birthdate: "1985-04-01",
  gender: "male",
  address: { formatted: "石川県加賀市大聖寺南町ニ４１番地" },
};

function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const server = createServer();
server.listen(port, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: signingKeys },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    claims: {
      openid: ["sub"],
      name: ["name"],
      address: ["address"],
      birthdate: ["birthdate"],
      gender: ["gender"],
    },
    scopes: ["openid", "offline_access", "name", "address", "birthdate", "gender"],
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ ...RESIDENT, sub: id }),
    }),
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      requestObjects: { enabled: true },
      dPoP: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    pkce: { required: () => true },
    rotateRefreshToken: () => true,
    enabledJWA: {
      idTokenSigningAlgValues: ["ES256", "RS256"],
      clientAuthSigningAlgValues: ["ES256", "RS256", "PS256"],
      requestObjectSigningAlgValues: ["ES256", "RS256", "PS256"],
      dPoPSigningAlgValues: ["ES256", "RS256", "PS256", "EdDSA"],
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Errors that cannot go back to the client: the same marker our error page carries.
    renderError: async (ctx, out) => {
      ctx.type = "html";
      ctx.body = `<!DOCTYPE html><p id="error-code">${escape(out.error)}</p>`
        + `<p>${escape(out.error_description)}</p>`;
    },
  });

  // The programmatic interaction: log the resident in and grant everything requested.
  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
    if (!match || ctx.method !== "GET") return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { params } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: RESIDENT.sub, clientId: params.client_id });
    if (params.scope) grant.addOIDCScope(params.scope);
    if (params.claims) {
      const claims = JSON.parse(params.claims);
      const names = [...Object.keys(claims.id_token ?? {}), ...Object.keys(claims.userinfo ?? {})];
      if (names.length) grant.addOIDCClaims(names);
    }
    const grantId = await grant.save();
    const result = { login: { accountId: RESIDENT.sub }, consent: { grantId } };
    await provider.interactionFinished(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: false,
    });
    ctx.respond = false;
  });

  server.on("request", provider.callback());
  process.stdout.write(JSON.stringify({ issuer }) + "\n");
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
