// Package notify is the notification hub: callback configurations, routing
// each event to the channels that subscribe to it, durable delivery with
// retries and rate limits, the delivery history, and the test button.
package notify

import (
	"sort"

	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/custom"
	"github.com/herald-release/herald/internal/notify/channel/dingtalk"
	"github.com/herald-release/herald/internal/notify/channel/discord"
	"github.com/herald-release/herald/internal/notify/channel/email"
	"github.com/herald-release/herald/internal/notify/channel/feishu"
	"github.com/herald-release/herald/internal/notify/channel/feishuapp"
	"github.com/herald-release/herald/internal/notify/channel/slack"
	"github.com/herald-release/herald/internal/notify/channel/teams"
	"github.com/herald-release/herald/internal/notify/channel/telegram"
	"github.com/herald-release/herald/internal/notify/channel/wechat"
)

// kinds are the channel types Herald can deliver to.
var kinds = map[string]channel.Kind{}

func init() {
	for _, k := range []channel.Kind{
		feishu.Kind, dingtalk.Kind, wechat.Kind, custom.Kind, email.Kind,
		feishuapp.Kind, slack.Kind, teams.Kind, discord.Kind, telegram.Kind,
	} {
		kinds[k.Type()] = k
	}
}

// KindTypes lists the channel types, sorted.
func KindTypes() []string {
	out := make([]string, 0, len(kinds))
	for t := range kinds {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
