import { BACKUP_FORMAT_VERSION } from '@xsmeta/core';

export const LEGACY_TARGET_VERSION = BACKUP_FORMAT_VERSION;
