export function renderProtocolTypes(schema: unknown): Promise<string>;
