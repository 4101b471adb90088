// A real, independent OpenID Provider on loopback for the portal's SSO tests.
//
// panva/node-oidc-provider is an OpenID Certified implementation; this script only adds a
// test client, a one-field sign-in page, automatic consent, a plain sign-out confirmation page
// and an RSA signing key generated at start.
//
// Who signs in: the sign-in page asks for a login. A login a test described beforehand (see
// "Test people" below) signs in with those claims; any other login signs in as itself (sub and
// email = the login, email_verified true unless "Address not verified" is ticked).
//
// Test people: with OIDC_ADMIN_TOKEN set, `PUT /test/people/<login>` (JSON body, header
// `Authorization: Bearer <token>`) describes a person: {sub, email, email_verified, name, groups,
// amr}. A claim given as null, or left out, is not sent (so `email_verified: null` tests a provider
// that omits it). The claims are read again at every token and UserInfo request, so changing a
// person (a new e-mail address for the same sub) applies to their next sign-in. `DELETE
// /test/people` forgets everyone. Without OIDC_ADMIN_TOKEN these endpoints do not exist.
//
// Signing out: RP-Initiated Logout (a confirmation page, then the client's registered sign-out
// redirect URI), and Back-Channel Logout to OIDC_BACKCHANNEL_LOGOUT_URI when it is set (the ID
// tokens then carry the session id, sid).
//
// Environment: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS and
// OIDC_POST_LOGOUT_REDIRECT_URIS (comma-separated), OIDC_BACKCHANNEL_LOGOUT_URI,
// OIDC_ADMIN_TOKEN, OIDC_PORT (0 = any free port). Prints one JSON line {"issuer": ...} once it
// listens.
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const clientId = env.OIDC_CLIENT_ID || 'portal-test';
const clientSecret = env.OIDC_CLIENT_SECRET || randomBytes(24).toString('base64url');
const list = (value) => (value || '').split(',').filter(Boolean);
const redirectUris = list(env.OIDC_REDIRECT_URIS);
const postLogoutRedirectUris = list(env.OIDC_POST_LOGOUT_REDIRECT_URIS);
const backchannelLogoutUri = env.OIDC_BACKCHANNEL_LOGOUT_URI || '';
const adminToken = env.OIDC_ADMIN_TOKEN || '';
const port = Number(env.OIDC_PORT || 0);

const CLAIMS = ['email', 'email_verified', 'name', 'groups'];
const people = new Map(); // login -> { sub, email, email_verified, name, groups, amr }

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

function personBySub(sub) {
  let found;
  for (const person of people.values()) if (person.sub === sub) found = person;
  return found;
}

function claimsOf(sub) {
  const person = personBySub(sub) || { sub };
  const claims = { sub };
  for (const name of CLAIMS) {
    if (person[name] !== undefined && person[name] !== null) claims[name] = person[name];
  }
  return claims;
}

let provider;
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err));
    });
    return;
  }
  if (adminToken && req.url.startsWith('/test/people')) {
    testPeople(req, res).catch((err) => {
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
      post_logout_redirect_uris: postLogoutRedirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      ...(backchannelLogoutUri
        ? { backchannel_logout_uri: backchannelLogoutUri, backchannel_logout_session_required: true }
        : {}),
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // amr, acr and auth_time go into the ID token as Okta and Entra ID put them there (the session's)
    claims: {
      openid: ['sub', 'amr', 'acr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      backchannelLogout: { enabled: true },
    },
    interactions: { url: (ctx, details) => `/interaction/${details.uid}` },
    pkce: { required: () => true }, // the portal must send S256 PKCE, or this provider refuses
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => claimsOf(sub) }),
  });
  provider.proxy = false;
  process.stdout.write(`${JSON.stringify({ issuer, client_id: clientId })}\n`);
});

async function readBody(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

function authorized(req) {
  const given = Buffer.from(req.headers.authorization || '');
  const wanted = Buffer.from(`Bearer ${adminToken}`);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

async function testPeople(req, res) {
  res.setHeader('Content-Type', 'application/json');
  if (!authorized(req)) {
    res.statusCode = 401;
    res.end('{"error":"unauthorized"}');
    return;
  }
  const login = decodeURIComponent(req.url.slice('/test/people/'.length)).trim().toLowerCase();
  if (req.method === 'DELETE' && req.url === '/test/people') {
    people.clear();
    res.end('{}');
    return;
  }
  if (req.method === 'PUT' && login) {
    const person = JSON.parse(await readBody(req));
    if (typeof person !== 'object' || person === null || typeof person.sub !== 'string' || !person.sub) {
      res.statusCode = 400;
      res.end('{"error":"a person needs a sub"}');
      return;
    }
    people.set(login, person);
    res.end(JSON.stringify(person));
    return;
  }
  res.statusCode = 405;
  res.end('{"error":"PUT /test/people/<login> or DELETE /test/people"}');
}

function html(res, title, body) {
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<link rel="icon" href="data:,"></head><body><main>${body}</main></body></html>`);
}

function page(res, uid) {
  html(res, 'Hospital sign-in', `<h1>Hospital identity provider</h1>
<form method="post" action="/interaction/${uid}/login">
<label for="email">Hospital e-mail</label> <input id="email" name="email" type="email" required>
<label><input type="checkbox" name="unverified" value="1"> Address not verified</label>
<button type="submit">Continue</button></form>`);
}

async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out</title>
<link rel="icon" href="data:,"></head><body><main><h1>Sign out of the hospital identity provider?</h1>
${form}<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button></main></body></html>`;
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title>
<link rel="icon" href="data:,"></head><body><main><h1>Signed out of the hospital identity provider</h1></main></body></html>`;
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (req.method === 'POST' && req.url.endsWith('/login')) {
    const form = new URLSearchParams(await readBody(req));
    const login = (form.get('email') || '').trim().toLowerCase();
    if (!people.has(login)) {
      people.set(login, { sub: login, email: login, email_verified: form.get('unverified') !== '1' });
    }
    const person = people.get(login);
    const result = { accountId: person.sub };
    if (Array.isArray(person.amr)) result.amr = person.amr;
    await provider.interactionFinished(req, res, { login: result }, { mergeWithLastSubmission: false });
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

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
