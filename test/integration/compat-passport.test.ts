import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import passport from 'passport';
import { Strategy as OpenIDConnectStrategy } from 'passport-openidconnect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

let server: TestServer;
let relyingParty: Server;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
  await new Promise<void>((resolve) => (relyingParty ? relyingParty.close(() => resolve()) : resolve()));
});

/** An Express service using passport-openidconnect exactly as its README shows. */
async function startExpressService(clientId: string, clientSecret: string, port: number): Promise<string> {
  const origin = `http://127.0.0.1:${port}`;
  const app = express();
  app.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false }));
  app.use(passport.initialize());
  app.use(passport.session());
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user: Express.User, done) => done(null, user));
  passport.use(
    new OpenIDConnectStrategy(
      {
        issuer: server.issuer,
        authorizationURL: `${server.issuer}/auth`,
        tokenURL: `${server.issuer}/token`,
        userInfoURL: `${server.issuer}/me`,
        clientID: clientId,
        clientSecret,
        callbackURL: `${origin}/callback`,
        scope: ['profile', 'email'],
        // The library reads claims from the ID token unless told to call userinfo; our ID
        // tokens carry only sub and protocol claims (OIDC Core 5.4), profile data is at /me.
        skipUserProfile: false,
      },
      (_issuer: string, profile: Express.User, done: (error: null, user: Express.User) => void) => done(null, profile),
    ),
  );
  app.get('/login', passport.authenticate('openidconnect'));
  app.get('/callback', passport.authenticate('openidconnect', { failureRedirect: '/failed' }), (req, res) => res.json(req.user));
  app.get('/failed', (_req, res) => res.status(401).send('failed'));
  relyingParty = createServer(app);
  await new Promise<void>((resolve) => relyingParty.listen(port, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(relyingParty.address() as AddressInfo).port}`;
}

describe('compatibility: passport-openidconnect under Express', () => {
  it('signs a user in through the hosted pages and receives the consented profile', async () => {
    const port = 9700;
    const account = await createTestAccount(server.db);
    // passport-openidconnect authenticates with client_secret_post and does not use PKCE.
    const { client, clientSecret } = await createTestClient(server.db, server.validator, {
      redirectUris: [`http://127.0.0.1:${port}/callback`],
      authMethod: 'client_secret_post',
    });
    const origin = await startExpressService(client.clientId, clientSecret!, port);
    const agent = new UserAgent();
    const { callback } = await completeAuthorization(agent, `${origin}/login`, client.redirectUris[0]!, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    const result = await agent.request(callback.href);
    expect(result.status).toBe(200);
    const profile = JSON.parse(result.body) as { id: string; displayName: string; emails: { value: string }[] };
    expect(profile.displayName).toBe(account.name);
    expect(profile.emails).toEqual([{ value: account.email }]);
    expect(profile.id).not.toBe(account.id); // pairwise
  });
});
