# syntax=docker/dockerfile:1
#
# One image recipe for every Muse service:
#
#   docker build --build-arg SERVICE=gateway -t muse-gateway .
#   docker run --rm -p 3000:3000 -e NATS_URL=... -e REDIS_URL=... muse-gateway
#
# SERVICE is an app folder under apps/ (gateway, coordinator, agent-worker,
# artifact-store, observability, scaler, cli); the container runs
# `node apps/$SERVICE/dist/main.js`. Only the last stage reads SERVICE, so the
# install and build stages are cached once and shared by all services.

ARG NODE_IMAGE=node:24-bookworm-slim

# --- manifests: only what `npm install` reads, so source edits keep the install layer cached.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir -p /out \
 && cp package.json package-lock.json .npmrc /out/ \
 && for dir in libs/* apps/*; do \
      if [ -f "$dir/package.json" ]; then mkdir -p "/out/$dir" && cp "$dir/package.json" "/out/$dir/"; fi; \
    done

# --- deps: every dependency, dev included (the build needs TypeScript).
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY --from=manifests /out/ ./
# `npm install`, not `npm ci`: the committed lockfile is made on one platform
# and lacks some optional platform packages that `npm ci` would refuse to add.
RUN --mount=type=cache,target=/root/.npm \
    npm install --no-audit --no-fund

# --- build: compile everything, then keep only what runs.
FROM deps AS build
COPY . .
RUN npm run build
RUN --mount=type=cache,target=/root/.npm \
    npm prune --omit=dev --no-audit --no-fund \
 && mkdir -p /out \
 && cp -R package.json node_modules /out/ \
 && for dir in libs/* apps/*; do \
      if [ -d "$dir/dist" ]; then \
        mkdir -p "/out/$dir" && cp "$dir/package.json" "/out/$dir/" && cp -R "$dir/dist" "/out/$dir/"; \
      fi; \
    done \
 && find /out/libs /out/apps \( -name '*.tsbuildinfo' -o -name '*.spec.js' -o -name '*.spec.js.map' -o -name '*.spec.d.ts' -o -name '*.spec.d.ts.map' \) -delete

# --- runtime: one service, non-root.
FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
# MALLOC_ARENA_MAX=1: one glibc malloc arena instead of one per thread, ~3 MB less idle RSS per service at no CPU
# cost measured (libs/cluster/src/service-process.ts, SERVICE_ENV_DEFAULTS, which `npm start` uses).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=1 \
    HOST=0.0.0.0 \
    SERVICE=${SERVICE}
WORKDIR /app
COPY --from=build --chown=node:node /out/ ./
# Fail the build, not the container start, when SERVICE names no app. The
# data folders exist (owned by `node`) so volumes mounted there are writable.
# The agent worker runs shell steps under bubblewrap (Debian's package): no network unless a step allows it, a
# read-only root, the workspace the only writable place. bwrap needs unprivileged user namespaces, which Docker's
# default seccomp profile refuses: docker-compose.yml runs the agent worker with `seccomp=unconfined` (the trade:
# the container's syscall filter for a sandbox around each step). Without it the worker says at start-up that
# shell steps run unsandboxed, or refuses to start with MUSE_SANDBOX=bwrap.
RUN if [ "${SERVICE}" = "agent-worker" ]; then \
      apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*; \
    fi
RUN if [ -z "${SERVICE}" ]; then echo "build with --build-arg SERVICE=<app folder under apps/>" >&2; exit 1; fi \
 && if [ ! -f "apps/${SERVICE}/dist/main.js" ]; then echo "apps/${SERVICE}/dist/main.js was not built" >&2; exit 1; fi \
 && mkdir -p /app/.muse /data/artifacts /data/workspaces \
 && chown -R node:node /app/.muse /data
USER node
# `exec` makes node PID 1's direct replacement, so SIGTERM reaches it and the
# service drains in-flight work (run compose with `init: true` to reap zombies).
# The same V8 flags as libs/cluster's service-process.ts: --max-semi-space-size=2 --expose-gc --no-maglev for every service (a
# smaller young generation, the idle memory trim, no mid-tier compiler; SERVICE_NODE_FLAGS), and a service's own after it (SERVICE_EXTRA_NODE_FLAGS: the artifact store on the
# local backend runs its JavaScript without the optimizing compilers, about 11 MB smaller; the coordinator, which allocates
# the most per step, gets V8's default 16 MB semi-spaces back, the last flag winning). test/e2e/artifacts.test.ts runs
# this line to check.
ENTRYPOINT ["/bin/sh", "-c", "case \"$SERVICE:${MUSE_ARTIFACT_BACKEND:-local}\" in artifact-store:local) flags='--no-opt' ;; coordinator:*) flags='--max-semi-space-size=16' ;; *) flags='' ;; esac; exec node --enable-source-maps --max-semi-space-size=2 --expose-gc --no-maglev $flags \"apps/${SERVICE}/dist/main.js\" \"$@\"", "muse"]
