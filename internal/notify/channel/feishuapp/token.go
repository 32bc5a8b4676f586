package feishuapp

import "github.com/herald-release/herald/internal/notify/channel"

// tokens holds one tenant_access_token per app (API base, app id, secret).
// Feishu asks callers to cache it rather than fetch one per call (the
// token endpoint is rate limited too), so every sender of one app shares
// it; see channel.TokenCache. Feishu hands out a new token once the old
// one has under 30 minutes left, so a fetch inside the cache's refresh
// margin (at most 5 minutes) gets a fresh one.
var tokens = channel.NewTokenCache("feishu_app: waiting for a tenant_access_token")
