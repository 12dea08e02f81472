#!/usr/bin/env node
console.error('authws: not implemented yet');
process.exit(1);
