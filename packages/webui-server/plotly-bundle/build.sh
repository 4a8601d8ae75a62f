#!/bin/sh
# Rebuild ../src/nni/server/webui/static/vendor/plotly-nni-<version>.min.js (a developer's step: needs
# node >= 20 and the npm registry; nothing here runs at install, test or run time).
set -eu
cd "$(dirname "$0")"
OUT=../src/nni/server/webui/static/vendor
npm install --no-audit --no-fund
node build.js build/plotly-nni.js
VERSION=$(node -p "require('plotly.js/package.json').version")
{
  printf '/**\n* plotly.js v%s, partial bundle for the NNI web UI: traces scatter, scattergl, bar, parcoords.\n' "$VERSION"
  printf '* Copyright 2012-2026, Plotly, Inc. All rights reserved. Licensed under the MIT license\n'
  printf '* (plotly.js-LICENSE.txt); bundled dependencies (d3, regl ...) keep their MIT/ISC/BSD licenses.\n'
  printf '* Built by packages/webui-server/plotly-bundle/build.sh (esbuild + terser).\n*/\n'
  npx terser build/plotly-nni.js --compress --mangle --comments false
} > "$OUT/plotly-nni-$VERSION.min.js"
cp node_modules/plotly.js/LICENSE "$OUT/plotly.js-LICENSE.txt"
ls -l "$OUT/plotly-nni-$VERSION.min.js"
