// A real, independent OpenID Provider on loopback for the portal's SSO tests.
//
// panva/node-oidc-provider is an OpenID Certified implementation; this script only adds a
// test client, a one-field sign-in page (any e-mail address signs in; a checkbox makes
// the address unverified), automatic consent and an RSA signing key generated at start.
//
// Environment: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (comma-separated),
// OIDC_PORT (0 = any free port). Prints one JSON line {"issuer": ...} once it listens.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const clientId = env.OIDC_CLIENT_ID || 'portal-test';
const clientSecret = env.OIDC_CLIENT_SECRET || randomBytes(24).toString('base64url');
const redirectUris = (env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean);
const port = Number(env.OIDC_PORT || 0);

const accounts = new Map(); // e-mail -> { verified }

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

let provider;
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err));
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, details) => `/interaction/${details.uid}` },
    pkce: { required: () => true }, // the portal must send S256 PKCE, or this provider refuses
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: sub, email_verified: accounts.get(sub)?.verified ?? false }),
    }),
  });
  provider.proxy = false;
  process.stdout.write(`${JSON.stringify({ issuer, client_id: clientId })}\n`);
});

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function page(res, uid) {
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hospital sign-in</title>
<link rel="icon" href="data:,"></head><body><main><h1>Hospital identity provider</h1>
<form method="post" action="/interaction/${uid}/login">
<label for="email">Hospital e-mail</label> <input id="email" name="email" type="email" required>
<label><input type="checkbox" name="unverified" value="1"> Address not verified</label>
<button type="submit">Continue</button></form></main></body></html>`);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (req.method === 'POST' && req.url.endsWith('/login')) {
    const form = await readForm(req);
    const email = (form.get('email') || '').trim().toLowerCase();
    accounts.set(email, { verified: form.get('unverified') !== '1' });
    await provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'login') {
    page(res, uid);
    return;
  }
  // consent: granted automatically, as a hospital's provider does for its own applications
  const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
