// Package wechat sends events to WeCom (企业微信), either through a group
// robot webhook or as an application message (PRD §4.4, markdown).
//
// The config picks the mode: webhook_url means the group robot; corp_id,
// agent_id and secret mean the application, which needs an access token
// that is cached process-wide (token.go).
package wechat

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "wechat" channel type.
var Kind = channel.NewKind("wechat", []string{"webhook_url", "secret"}, parse, newSender)

// DefaultAPIBase is WeCom's API, overridable with api_base_url for
// private deployments and tests.
const DefaultAPIBase = "https://qyapi.weixin.qq.com"

// maxMentions bounds mention lists; WeCom notifies at most a group's
// members anyway.
const maxMentions = 100

// newSender sends the way the config picks: the application or the
// group robot.
func newSender(c config, deps channel.Deps) channel.Sender {
	if c.app != nil {
		return &appSender{cfg: *c.app, look: c.look, deps: deps}
	}
	return &robotSender{cfg: *c.robot, look: c.look, deps: deps}
}

type config struct {
	robot *robotConfig
	app   *appConfig
	look  channel.Look
}

type robotConfig struct {
	webhookURL          string
	key                 string
	mentionedList       []string
	mentionedMobileList []string
}

type appConfig struct {
	apiBase string
	corpID  string
	agentID int64
	secret  string
	toUser  string
}

var (
	robotFields = []string{"webhook_url", "mentioned_list", "mentioned_mobile_list"}
	appFields   = []string{"corp_id", "agent_id", "secret", "to_user", "api_base_url"}
)

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{look: r.Look()}
	isApp := false
	for _, f := range appFields {
		isApp = isApp || r.Has(f)
	}
	switch {
	case isApp && r.Has("webhook_url"):
		r.Errs.Add("webhook_url", "use either webhook_url (group robot) or corp_id, agent_id and secret (application), not both")
		r.Known(robotFields...)
		r.Known(appFields...)
	case isApp:
		c.app = parseApp(r, deps)
		for _, f := range robotFields {
			if r.Has(f) {
				r.Errs.Add(f, "is for the group robot (webhook_url); an application sends to to_user")
			}
		}
		r.Known(robotFields...)
	default:
		c.robot = parseRobot(r, deps)
	}
	errs := r.Done()
	if len(errs) > 0 {
		return config{}, errs
	}
	return c, nil
}

func parseRobot(r *channel.ConfigReader, deps channel.Deps) *robotConfig {
	c := &robotConfig{
		mentionedList:       r.Strings("mentioned_list", maxMentions),
		mentionedMobileList: r.Strings("mentioned_mobile_list", maxMentions),
	}
	if !r.Has("webhook_url") {
		r.Known("webhook_url")
		r.Errs.Add("webhook_url", "is required (or corp_id, agent_id and secret to send as an application)")
		return c
	}
	if u := r.URL("webhook_url", true, deps); u != nil {
		if key := u.Query().Get("key"); key == "" {
			r.Errs.Add("webhook_url", "must carry the robot's key (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…)")
		} else {
			c.webhookURL, c.key = u.String(), key
		}
	}
	for i, m := range c.mentionedMobileList {
		if m != "@all" && strings.Trim(m, "+-0123456789") != "" {
			r.Errs.Add("mentioned_mobile_list["+strconv.Itoa(i)+"]", `must be a phone number or "@all"`)
		}
	}
	return c
}

func parseApp(r *channel.ConfigReader, deps channel.Deps) *appConfig {
	c := &appConfig{
		corpID: r.String("corp_id"),
		secret: r.String("secret"),
		toUser: r.String("to_user"),
	}
	if c.corpID == "" && !hasError(r, "corp_id") {
		r.Errs.Add("corp_id", "is required for an application (or use webhook_url for a group robot)")
	}
	if c.secret == "" && !hasError(r, "secret") {
		r.Errs.Add("secret", "is required: the application's Secret")
	}
	if id, ok := r.Int("agent_id"); ok {
		if id <= 0 {
			r.Errs.Add("agent_id", "must be the application's positive AgentId")
		}
		c.agentID = id
	} else if !hasError(r, "agent_id") {
		r.Errs.Add("agent_id", "is required: the application's AgentId, an integer")
	}
	if c.toUser == "" {
		c.toUser = "@all"
	}
	c.apiBase = r.APIBase(DefaultAPIBase, deps)
	return c
}

func hasError(r *channel.ConfigReader, field string) bool {
	for _, e := range r.Errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

// cleanMsg drops WeCom's ", hint: [...]" and "more info at" tails, which
// carry request ids and links, not meaning.
func cleanMsg(msg string) string {
	for _, sep := range []string{", hint:", ", from ip:", ", more info at"} {
		if i := strings.Index(msg, sep); i > 0 {
			msg = msg[:i]
		}
	}
	return msg
}
