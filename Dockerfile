# The MCP Gateway auth service (OAuth 2.1 authorization server and the /verify decision point).
#
#   docker build -t mcp-gateway .
#   docker run --env-file .env -v ./deploy/gateway.yaml:/etc/mcp-gateway/gateway.yaml:ro mcp-gateway
#
# compose.yaml builds and runs it; docs/deployment.md has the whole stack. No secret is baked
# in: the configuration file is mounted at run time and its ${VAR} values come from the
# environment (or VAR_FILE, e.g. Docker secrets).
#
# Base image: the same Node.js release as the `node` devDependency in package.json, which pins
# Node for development machines; the image has its own Node and never installs that package.

FROM node:22.23.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`: the lock file is written by npm 11.19, which leaves out the
# entries of other platforms' optional packages (@swc/core-darwin-*, …), which `npm ci`
# reports as out of sync with package.json before it stops (seen with npm 11; whether the
# image's older npm accepts the file could not be tried without a Docker engine, so the build
# does not depend on it). `npm install` installs the versions the lock file names, as .ci/run
# does.
# --ignore-scripts: no install script of a devDependency runs here. The `node` devDependency's
# script would fetch a second Node binary; without it, node_modules/.bin/node is no working
# Node, and it must go because `npm run build` puts node_modules/.bin first on PATH.
RUN npm install --no-audit --no-fund --ignore-scripts && rm -f node_modules/.bin/node
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:22.23.3-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (--omit=dev: no TypeScript, no test tools, no `node` package).
# None of them has an install script. Same lock file, same reason for `npm install` as above.
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The command line inside the container (`docker compose exec auth mcp-gateway servers …`):
# package.json's `bin` on the PATH, reading the file compose mounts when no --config is given
# (the same file CMD names). tests/deploy/compose-native.test.ts runs it natively.
RUN chmod 755 dist/main.js && ln -s /app/dist/main.js /usr/local/bin/mcp-gateway
ENV MCP_GATEWAY_CONFIG=/etc/mcp-gateway/gateway.yaml
# The security events file for CrowdSec (log.securityEventsFile) goes to a volume mounted here;
# a new named volume takes this directory's owner, so the service can write to it.
# traefik-dynamic: a fresh named volume takes this directory's owner, so the service can write.
RUN mkdir -p /etc/mcp-gateway/traefik-dynamic /var/log/mcp-gateway \
  && chown node:node /var/log/mcp-gateway /etc/mcp-gateway/traefik-dynamic
USER node
EXPOSE 8787
# Liveness only (/healthz). /readyz also checks the store; see docs/deployment.md.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8787/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# AsyncLocalStorage (request ids in logs) without async hooks on every promise: the default
# from Node 24, a flag on Node 22 (docs/runtime.md, docs/performance.md).
CMD ["node", "--experimental-async-context-frame", "dist/main.js", "--config", "/etc/mcp-gateway/gateway.yaml"]
