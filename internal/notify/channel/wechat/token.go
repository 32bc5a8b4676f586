package wechat

import "github.com/herald-release/herald/internal/notify/channel"

// tokens holds one access token per application (API base, corp id,
// secret). WeCom limits how often gettoken may be called and asks callers
// to cache the token, so every sender of one application shares it; see
// channel.TokenCache.
var tokens = channel.NewTokenCache("wechat: waiting for an access token")
