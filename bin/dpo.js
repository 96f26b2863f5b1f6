#!/usr/bin/env node
// The `dpo` command: a thin shim over the compiled CLI in dist/.
import '../dist/src/cli/dpo.js';
