// Where Telegram publishes the middle proxies' secret and list (docs/protocol.md §6.1): the
// defaults of PROXY_SECRET_URL, PROXY_CONFIG_URL and PROXY_CONFIG_V6_URL.
export const PROXY_SECRET_URL = 'https://core.telegram.org/getProxySecret';
export const PROXY_CONFIG_URL = 'https://core.telegram.org/getProxyConfig';
export const PROXY_CONFIG_V6_URL = 'https://core.telegram.org/getProxyConfigV6';
