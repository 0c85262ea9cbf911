# Portcullis server image. It manages the host's firewall, so it runs in the host's network namespace, as root inside
# the container (iptables and ipset refuse other users) but with only the NET_ADMIN and NET_RAW capabilities:
#   docker run -d --name portcullis --network host --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
#     -v portcullis:/var/lib/portcullis -v /run/fail2ban:/run/fail2ban -v /etc/fail2ban:/etc/fail2ban portcullis
# (the fail2ban mounts only for the jail service; `docker kill -s HUP portcullis` reloads rotated certificates).
# The first start creates certificates in the volume; the admin bundle is in /var/lib/portcullis/pki/clients/admin.
# gRPC on 50051, REST (HTTPS, same client certificates) on 8443, with the web console at https://HOST:8443/console/.
# For the fail2ban action on the host:
#   docker run … portcullis install-fail2ban-action --fail2ban-config-dir /host/etc/fail2ban   (with that bind mount)
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Behind a TLS-intercepting proxy: --build-arg NODE_EXTRA_CA_CERTS=<the proxy CA's file, mounted with -v> for npm.
# Without nodejs.org (better-sqlite3 compiles against Node's headers): --build-arg npm_config_nodedir=<headers' prefix>.
ARG NODE_EXTRA_CA_CERTS
ARG npm_config_nodedir
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY sdk/package.json sdk/
COPY server/package.json server/
COPY console/package.json console/
RUN npm ci --no-audit --no-fund && node -e 'new (require("better-sqlite3"))(":memory:").close()'
COPY tsconfig.json ./
COPY proto proto
COPY openapi openapi
COPY sdk sdk
COPY server server
COPY console console
COPY scripts/build*.mjs scripts/
# The server bundle and the web console (console/dist, served at /console/ on the REST port).
RUN node scripts/build.mjs
# Only what runs: dev tools (buf, redocly, typescript, esbuild…) stay in the build stage.
RUN npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# fail2ban for fail2ban-client (StartJail and ReloadJails use its configuration reader); its server runs on the host.
RUN apt-get update && apt-get install -y --no-install-recommends iptables ipset iproute2 coreutils ca-certificates fail2ban \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p -m 700 /var/lib/portcullis
ENV PORTCULLIS_DATA_DIR=/var/lib/portcullis PORTCULLIS_GRPC_ADDRESS=0.0.0.0:50051 PORTCULLIS_REST_ADDRESS=0.0.0.0:8443
VOLUME /var/lib/portcullis
EXPOSE 50051 8443
# The gRPC health service, asked over mTLS with the volume's admin bundle.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["node", "server/bin/portcullis", "healthcheck"]
ENTRYPOINT ["node", "server/bin/portcullis"]
CMD ["serve"]
