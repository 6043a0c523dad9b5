#!/usr/bin/env node
import { main } from '../dist/bin/xe-backup-metadata.js';

process.exitCode = await main(process.argv.slice(2));
