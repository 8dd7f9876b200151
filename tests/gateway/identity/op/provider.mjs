// The OpenID Provider of the gateway's sign-in tests: the certified `oidc-provider`
// package (panva/node-oidc-provider), not an implementation of our own. This file
// only configures it and adds what a test harness needs:
//
// * a login page (any listed account, no password: the tests are about the relying
//   party) that also grants consent, so a sign-in is two form posts;
// * control endpoints under /__control/ (loopback only): `configure` sets the
//   clients and accounts, `rotate` publishes a new signing key (first in the JWKS,
//   so new ID tokens carry its kid) and optionally retires the old ones.
//
// Started by tests/gateway/identity/provider.py; prints {"port": N} once listening.
import crypto from 'node:crypto';
import http from 'node:http';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const host = '127.0.0.1';
const cookieKeys = [crypto.randomBytes(32).toString('hex')];

let clients = [];
let accounts = {};
let signingKeys = [newKey()];
let idTokenTtl = 600;
let provider;
let handler;

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

function build(issuer) {
  // The default in-memory adapter keeps its store at module level, so sessions,
  // grants and codes survive a rebuild (a key rotation is not a restart).
  const built = new Provider(issuer, {
    clients,
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    async findAccount(ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email_verified: true, ...account };
        },
      };
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        // The default page loads a web font from the internet; this one loads nothing.
        async logoutSource(ctx, form) {
          ctx.body = `<!doctype html><html lang="en"><head><title>Sign out</title></head>
<body><main><h1>Sign out of the test identity provider?</h1>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
</main></body></html>`;
        },
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: {
      IdToken: () => idTokenTtl,
      AccessToken: 600,
      AuthorizationCode: 60,
      Session: 3600,
      Interaction: 600,
      Grant: 3600,
    },
  });
  built.on('server_error', (ctx, error) => console.error('server_error', error));
  return built;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET' && details.prompt.name === 'login') {
    const options = Object.keys(accounts)
      .map((id) => `<option value="${escape(id)}">${escape(accounts[id].email || id)}</option>`)
      .join('');
    send(res, 200, 'text/html; charset=utf-8', `<!doctype html><html lang="en"><head>
<title>Test identity provider: sign in</title></head><body><main>
<h1>Test identity provider</h1>
<form method="post" action="/interaction/${escape(uid)}">
<label for="account">Account</label>
<select id="account" name="account">${options}</select>
<button type="submit">Sign in</button>
</form></main></body></html>`);
    return;
  }
  let accountId = details.session?.accountId;
  if (req.method === 'POST') {
    accountId = new URLSearchParams(await readBody(req)).get('account');
    if (!accounts[accountId]) {
      send(res, 400, 'text/plain', `unknown account ${accountId}`);
      return;
    }
  }
  // Consent for everything asked: the relying party is the subject of these tests.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

async function control(req, res, action) {
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
  if (action === 'configure') {
    clients = body.clients ?? clients;
    accounts = body.accounts ?? accounts;
    idTokenTtl = body.id_token_ttl ?? idTokenTtl;
  } else if (action === 'rotate') {
    const fresh = newKey();
    signingKeys = body.retire ? [fresh] : [fresh, ...signingKeys];
  } else {
    send(res, 404, 'application/json', '{"error":"unknown control action"}');
    return;
  }
  provider = build(provider.issuer);
  handler = provider.callback();
  send(res, 200, 'application/json', JSON.stringify({ kids: signingKeys.map((k) => k.kid) }));
}

const server = http.createServer(async (req, res) => {
  try {
    const path = new URL(req.url, 'http://x').pathname;
    const interactionMatch = path.match(/^\/interaction\/([^/]+)$/);
    if (path.startsWith('/__control/')) {
      await control(req, res, path.slice('/__control/'.length));
    } else if (interactionMatch) {
      await interaction(req, res, interactionMatch[1]);
    } else {
      handler(req, res);
    }
  } catch (error) {
    console.error(error);
    if (!res.headersSent) send(res, 500, 'text/plain', String(error));
  }
});

server.listen(0, host, () => {
  const { port } = server.address();
  provider = build(`http://${host}:${port}`);
  handler = provider.callback();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});

// Stop with the test run even if the harness dies without killing this process.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
