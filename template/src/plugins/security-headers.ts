// The security headers of the service contract, on every response of both ports: the operational
// endpoints, 404s and errors included (the hook is a root hook, which Fastify also runs for the
// not-found handler). Exactly this set, the same as the Go and Django services send:
//   X-Content-Type-Options: nosniff            Cross-Origin-Opener-Policy: same-origin
//   X-Frame-Options: DENY                      Cross-Origin-Resource-Policy: same-origin
//   Referrer-Policy: no-referrer               Content-Security-Policy: default-src 'none'; ...
// Strict-Transport-Security is the TLS terminator's job (the Gateway or load balancer), where the
// HTTPS scheme is known, like the headers for browsers' legacy features.
//
// Constants set by one synchronous hook, not @fastify/helmet: helmet ran a chain of six
// middlewares per request to recompute the same six values (4% of the CPU on /health, issue 15),
// and its promise-based hook cost a microtask; the contract fixes the values, so nothing needs
// computing. test/contract.test.ts checks that exactly this set is sent.
import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';

// A JSON API loads nothing and is framed by nothing.
export const CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'";

/** The contract's security headers (X-Request-ID comes from src/plugins/request-log.ts). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
});

const securityHeaders: FastifyPluginCallback = (app, _options, done) => {
  app.addHook('onRequest', (_request, reply, next) => {
    void reply.headers(SECURITY_HEADERS);
    next();
  });
  done();
};

export default fp(securityHeaders, { name: 'security-headers' });
