# syntax=docker/dockerfile:1
# The production image of the identity provider. Two stages: the first compiles TypeScript
# with every dependency; the second holds only what runs (dist/, migrations/, views/ and the
# production dependencies), as a non-root user. test/integration/production-image.test.ts
# assembles exactly the final stage's files and starts them, since base images cannot be
# pulled where this project is tested.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# `prepare` compiles (npm ci runs it), so the sources come first.
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts skips the project's own `prepare` (it compiles, and TypeScript is not a
# production dependency); `npm rebuild` then runs the dependencies' install scripts: argon2
# checks that its prebuilt binary loads on this CPU and compiles itself otherwise (which
# needs python3, make and g++ in the image; the prebuilt binary loads on common x86-64 and
# arm64 hosts).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm rebuild && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY views ./views
# Only the embedded database (no DATABASE_URL) writes here; production sets DATABASE_URL.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The server drains in-flight requests on SIGTERM (SHUTDOWN_TIMEOUT_SECONDS).
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
