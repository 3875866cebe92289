// The security headers of the service contract, on every response of both ports: the operational
// endpoints, 404s and errors included (the hooks are root hooks, which Fastify also runs for the
// not-found handler). Exactly this set, the same as the Go and Django services send:
//   X-Content-Type-Options: nosniff            Cross-Origin-Opener-Policy: same-origin
//   X-Frame-Options: DENY                      Cross-Origin-Resource-Policy: same-origin
//   Referrer-Policy: no-referrer               Content-Security-Policy: default-src 'none'; ...
// Strict-Transport-Security is the TLS terminator's job (the Gateway or load balancer), where the
// HTTPS scheme is known, so helmet's HSTS is off, like its headers for browsers' legacy features.
import helmet from '@fastify/helmet';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

// A JSON API loads nothing and is framed by nothing. Set here rather than through helmet's
// contentSecurityPolicy, which joins directives with ";" and not the contract's "; ".
export const CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'";

const securityHeaders: FastifyPluginAsync = async (app) => {
  await app.register(helmet, {
    contentSecurityPolicy: false,
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    originAgentCluster: false,
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: false,
    xContentTypeOptions: true,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xFrameOptions: { action: 'deny' },
    xPermittedCrossDomainPolicies: false,
    xPoweredBy: true,
    xXssProtection: false,
  });
  app.addHook('onRequest', async (_request, reply) => {
    void reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
  });
};

export default fp(securityHeaders, { name: 'security-headers' });
