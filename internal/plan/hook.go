package plan

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// The hook: at each configured moment Herald POSTs the seed's body to the
// external system, which may answer later through the callback.

// Hook headers (CONTRACT §7 and §8).
const (
	HeaderEvent  = "X-Herald-Event"
	HeaderAction = "X-Herald-Action"
	HeaderToken  = "X-Herald-Token"
	// Standard Webhooks (https://www.standardwebhooks.com).
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// Limits of the hook settings.
const (
	DefaultCheckTimeout = time.Hour
	MinCheckTimeout     = time.Second
	MaxCheckTimeout     = 7 * 24 * time.Hour
	// hookTimeout bounds one hook request.
	hookTimeout = 15 * time.Second
)

// HookSettings is the body of GET/PUT /api/v1/release/settings/plan-hook.
// HookSecret is write-only: answers show "******" when one is set, and a
// PUT that sends "******" keeps it.
type HookSettings struct {
	Enable         bool              `json:"enable"`
	EnableCallback bool              `json:"enable_callback"`
	HookAddress    string            `json:"hook_address"`
	HookSecret     string            `json:"hook_secret"`
	HookEvents     []string          `json:"hook_events"`
	CheckTimeout   duration.Duration `json:"check_timeout"`
}

// hookSettings is the stored row, the secret still sealed.
type hookSettings struct {
	Enable         bool
	EnableCallback bool
	Address        string
	SealedSecret   string
	Events         []string
	CheckTimeout   time.Duration
}

// sends tells whether the hook is sent at a moment.
func (h *hookSettings) sends(hookEvent string) bool {
	return h.Enable && h.Address != "" && contains(h.Events, hookEvent)
}

// waits tells whether the plan waits for the external check of a moment.
func (h *hookSettings) waits(hookEvent string) bool { return h.sends(hookEvent) && h.EnableCallback }

func loadSettings(ctx context.Context, q db.Querier) (*hookSettings, error) {
	h := &hookSettings{CheckTimeout: DefaultCheckTimeout, Events: []string{}}
	var events string
	var ms int64
	err := q.QueryRow(ctx, `SELECT enable, enable_callback, hook_address, hook_secret, hook_events, check_timeout_ms
		FROM release_plan_hook_settings WHERE id = 'default'`).
		Scan(&h.Enable, &h.EnableCallback, &h.Address, &h.SealedSecret, &events, &ms)
	if errors.Is(err, db.ErrNoRows) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the plan hook settings: %w", err)
	}
	if err := json.Unmarshal([]byte(events), &h.Events); err != nil {
		return nil, fmt.Errorf("stored plan hook events: %w", err)
	}
	h.CheckTimeout = time.Duration(ms) * time.Millisecond
	return h, nil
}

func (s *Service) openSecret(h *hookSettings) (string, error) {
	if h.SealedSecret == "" {
		return "", nil
	}
	b, err := s.box.Open(h.SealedSecret)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (h *hookSettings) view() *HookSettings {
	out := &HookSettings{Enable: h.Enable, EnableCallback: h.EnableCallback, HookAddress: h.Address,
		HookEvents: h.Events, CheckTimeout: duration.Duration(h.CheckTimeout)}
	if h.SealedSecret != "" {
		out.HookSecret = channel.Masked
	}
	if out.HookEvents == nil {
		out.HookEvents = []string{}
	}
	return out
}

// HookSettings returns the hook settings, the secret masked.
func (s *Service) HookSettings(ctx context.Context) (*HookSettings, error) {
	h, err := loadSettings(ctx, s.db)
	if err != nil {
		return nil, err
	}
	return h.view(), nil
}

// PutHookSettings replaces the hook settings.
func (s *Service) PutHookSettings(ctx context.Context, actor event.Actor, in HookSettings) (*HookSettings, error) {
	var errs validate.Errors
	in.HookAddress = strings.TrimSpace(in.HookAddress)
	if in.HookAddress != "" {
		u, err := parseHookURL(in.HookAddress)
		switch {
		case err != nil:
			errs.Add("hook_address", "%v", err)
		case s.check != nil:
			if err := s.check(u); err != nil {
				errs.Add("hook_address", "%v", err)
			}
		}
	}
	if in.Enable && in.HookAddress == "" {
		errs.Add("hook_address", "is required when the hook is enabled")
	}
	if in.HookEvents == nil {
		in.HookEvents = []string{}
	}
	seen := map[string]bool{}
	for i, e := range in.HookEvents {
		field := fmt.Sprintf("hook_events[%d]", i)
		switch {
		case !contains(HookEvents(), e):
			errs.Add(field, "must be finish_planning, start_execute or all_job_done, not %q", e)
		case seen[e]:
			errs.Add(field, "%q is listed twice", e)
		}
		seen[e] = true
	}
	if in.Enable && len(in.HookEvents) == 0 {
		errs.Add("hook_events", "choose at least one of finish_planning, start_execute, all_job_done when the hook is enabled")
	}
	if in.CheckTimeout == 0 {
		in.CheckTimeout = duration.Duration(DefaultCheckTimeout)
	}
	if d := in.CheckTimeout.D(); d < MinCheckTimeout || d > MaxCheckTimeout {
		errs.Add("check_timeout", "must be between %s and %s", MinCheckTimeout, MaxCheckTimeout)
	}
	if strings.ContainsAny(in.HookSecret, "\r\n\x00") {
		errs.Add("hook_secret", "must not contain line breaks or NUL (it is sent as the X-Herald-Token header)")
	}
	if strings.ContainsRune(in.HookAddress, 0) {
		errs.Add("hook_address", "must not contain NUL characters")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	var out *HookSettings
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		cur, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		sealed := cur.SealedSecret
		switch in.HookSecret {
		case channel.Masked:
		case "":
			sealed = ""
		default:
			if sealed, err = s.box.SealString(in.HookSecret); err != nil {
				return err
			}
		}
		if in.EnableCallback && sealed == "" {
			return apperr.Field("hook_secret", "is required with enable_callback: the external system proves its callbacks with it")
		}
		_, err = tx.Exec(ctx, `INSERT INTO release_plan_hook_settings
			(id, enable, enable_callback, hook_address, hook_secret, hook_events, check_timeout_ms, updated_by_id, updated_at)
			VALUES ('default', $1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (id) DO UPDATE SET enable = $1, enable_callback = $2, hook_address = $3, hook_secret = $4,
				hook_events = $5, check_timeout_ms = $6, updated_by_id = $7, updated_at = $8`,
			in.Enable, in.EnableCallback, in.HookAddress, sealed, mustJSON(in.HookEvents), in.CheckTimeout.D().Milliseconds(),
			actor.ID, s.stamp())
		if err != nil {
			return err
		}
		out = (&hookSettings{Enable: in.Enable, EnableCallback: in.EnableCallback, Address: in.HookAddress,
			SealedSecret: sealed, Events: in.HookEvents, CheckTimeout: in.CheckTimeout.D()}).view()
		return nil
	})
	return out, err
}

func parseHookURL(raw string) (string, error) {
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return "", errors.New("must be an http(s) URL")
	}
	req, err := http.NewRequest(http.MethodPost, raw, nil)
	if err != nil || req.URL.Host == "" {
		return "", errors.New("must be an http(s) URL")
	}
	return raw, nil
}

// SigningKey is the HMAC-SHA256 key of a hook's Standard Webhooks
// signature, derived from hook_secret: a secret of the Standard Webhooks
// form "whsec_<base64>" gives its decoded bytes, as a custom channel's
// secret does; any other secret is used as its UTF-8 bytes, so that a
// receiver verifies with any Standard Webhooks library given
// "whsec_" + base64(hook_secret).
func SigningKey(secret string) []byte {
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err := base64.StdEncoding.DecodeString(b64); err == nil && len(key) > 0 {
			return key
		}
	}
	return []byte(secret)
}

// Sign is the Standard Webhooks signature of a hook request: "v1," +
// base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), the same
// scheme as a custom channel's (CONTRACT §8).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// HookBody is the hook request's body, exactly the seed's.
type HookBody struct {
	ObjectKind  string          `json:"object_kind"`
	Event       string          `json:"event"`
	Workflow    json.RawMessage `json:"workflow"`
	ReleasePlan HookPlan        `json:"release_plan"`
}

// HookPlan is the release_plan of the hook body; times are Unix seconds,
// 0 when not set.
type HookPlan struct {
	ID                  string    `json:"id"`
	Index               int64     `json:"index"`
	Name                string    `json:"name"`
	EventName           string    `json:"event_name"`
	Manager             string    `json:"manager"`
	ManagerID           string    `json:"manager_id"`
	InstanceCode        string    `json:"instance_code"`
	StartTime           int64     `json:"start_time"`
	EndTime             int64     `json:"end_time"`
	ScheduleExecuteTime int64     `json:"schedule_execute_time"`
	Description         string    `json:"description"`
	CreatedBy           string    `json:"created_by"`
	CreateTime          int64     `json:"create_time"`
	UpdatedBy           string    `json:"updated_by"`
	UpdateTime          int64     `json:"update_time"`
	Jobs                []HookJob `json:"jobs"`
	Status              string    `json:"status"`
	PlanningTime        int64     `json:"planning_time"`
	ApprovalTime        int64     `json:"approval_time"`
	ExecutingTime       int64     `json:"executing_time"`
	SuccessTime         int64     `json:"success_time"`
}

// HookJob is a job of the hook body (the seed's HookReleasePlanJob).
type HookJob struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Type         string          `json:"type"`
	Spec         json.RawMessage `json:"spec"`
	Status       string          `json:"status"`
	ExecutedBy   string          `json:"executed_by"`
	ExecutedTime int64           `json:"executed_time"`
}

func unix(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

// hookBody builds the body of a moment from the plan as it stands in tx.
func hookBody(ctx context.Context, q db.Querier, p *planRow, hookEvent string) ([]byte, error) {
	names, err := userNames(ctx, q, p.userIDs())
	if err != nil {
		return nil, err
	}
	hp := HookPlan{
		ID: p.ID, Index: p.Number, Name: p.Name, EventName: hookEvent, Manager: names[p.ManagerID], ManagerID: p.ManagerID,
		InstanceCode: p.InstanceCode, StartTime: unix(p.StartTime), EndTime: unix(p.EndTime),
		ScheduleExecuteTime: unix(p.ScheduleTime), Description: p.Description,
		CreatedBy: p.CreatedByName, CreateTime: p.CreatedAt.Unix(), UpdatedBy: p.UpdatedByName, UpdateTime: p.UpdatedAt.Unix(),
		Jobs: make([]HookJob, len(p.Jobs)), Status: p.Status,
		PlanningTime: unix(p.PlanningTime), ApprovalTime: unix(p.ApprovalTime),
		ExecutingTime: unix(p.ExecutingTime), SuccessTime: unix(p.SuccessTime),
	}
	for i, j := range p.Jobs {
		hp.Jobs[i] = HookJob{ID: j.ID, Name: j.Name, Type: j.Type, Spec: jobView(j).Spec, Status: j.Status,
			ExecutedBy: j.ExecByName, ExecutedTime: unix(j.ExecutedAt)}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(HookBody{ObjectKind: "release_plan", Event: "release_plan", Workflow: json.RawMessage("null"), ReleasePlan: hp}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// enqueueHook stores the moment's hook request and queues its delivery;
// a moment already sent in this round is not sent again.
func (s *Service) enqueueHook(ctx context.Context, tx db.Tx, p *planRow, hookEvent string) error {
	body, err := hookBody(ctx, tx, p, hookEvent)
	if err != nil {
		return err
	}
	hookID := id.New("phk")
	now := s.stamp()
	n, err := tx.Exec(ctx, `INSERT INTO release_plan_hooks (id, plan_id, instance_code, hook_event, body, status, attempts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) ON CONFLICT (plan_id, instance_code, hook_event) DO NOTHING`,
		hookID, p.ID, p.InstanceCode, hookEvent, string(body), now)
	if err != nil || n == 0 {
		return err
	}
	if _, err := s.q.InsertTx(ctx, tx, HookArgs{HookID: hookID}, nil); err != nil {
		return fmt.Errorf("plan %s: queue the %s hook: %w", p.ID, hookEvent, err)
	}
	return nil
}

// HookArgs delivers one hook request. Retries snooze the same job, so
// every attempt sends the same body with the same webhook-id.
type HookArgs struct {
	HookID string `json:"hook_id"`
}

// Kind names the job for River.
func (HookArgs) Kind() string { return "plan.hook" }

// InsertOpts: MaxAttempts bounds Herald's own failures (a database error);
// the receiver's are counted in release_plan_hooks.
func (HookArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: 10}
}

type hookWorker struct {
	river.WorkerDefaults[HookArgs]
	s *Service
}

func (w *hookWorker) Timeout(*river.Job[HookArgs]) time.Duration { return hookTimeout + 30*time.Second }

func (w *hookWorker) Work(ctx context.Context, job *river.Job[HookArgs]) error {
	return w.s.deliverHook(ctx, job.Args.HookID)
}

type hookRow struct {
	ID, PlanID, InstanceCode, HookEvent, Body, Status string
	Attempts                                          int
}

func (s *Service) deliverHook(ctx context.Context, hookID string) error {
	var h hookRow
	err := s.db.QueryRow(ctx, `SELECT id, plan_id, instance_code, hook_event, body, status, attempts FROM release_plan_hooks WHERE id = $1`, hookID).
		Scan(&h.ID, &h.PlanID, &h.InstanceCode, &h.HookEvent, &h.Body, &h.Status, &h.Attempts)
	if errors.Is(err, db.ErrNoRows) {
		return nil // its plan was deleted
	}
	if err != nil {
		return err
	}
	if h.Status != "pending" {
		return nil
	}
	hs, err := loadSettings(ctx, s.db)
	if err != nil {
		return err
	}
	n := h.Attempts + 1
	if !hs.Enable || hs.Address == "" {
		return s.recordHook(ctx, &h, n, channel.Attempt{}, 0,
			channel.Permanent("the plan hook was disabled before this request could be sent"))
	}
	secret, err := s.openSecret(hs)
	if err != nil {
		return s.recordHook(ctx, &h, n, channel.Attempt{}, 0, channel.Permanent("plan hook: the hook secret cannot be read: %v", err))
	}
	body := []byte(h.Body)
	headers := map[string]string{
		"Content-Type": "application/json",
		"User-Agent":   channel.UserAgent(channel.Deps{Version: s.version}),
		HeaderEvent:    "release_plan",
		HeaderAction:   h.HookEvent,
	}
	secrets := []string{}
	if secret != "" {
		ts := s.now().Unix()
		sig := Sign(SigningKey(secret), h.ID, ts, body)
		headers[HeaderToken] = secret
		headers[HeaderWebhookID] = h.ID
		headers[HeaderWebhookTimestamp] = strconv.FormatInt(ts, 10)
		headers[HeaderWebhookSignature] = sig
		secrets = append(secrets, secret, strings.TrimPrefix(sig, "v1,"))
	}
	sctx, cancel := context.WithTimeout(ctx, hookTimeout)
	defer cancel()
	start := time.Now()
	att, _, sendErr := channel.Do(sctx, s.http, channel.HTTPRequest{
		Channel: "plan hook", URL: hs.Address, Headers: headers, Body: body, Secrets: secrets,
	})
	if _, ok := att.Request.Headers[HeaderWebhookSignature]; ok {
		att.Request.Headers[HeaderWebhookSignature] = channel.Masked
	}
	return s.recordHook(ctx, &h, n, att, time.Since(start), sendErr)
}

// recordHook writes an attempt. A retryable failure with retries left
// snoozes the job; success or the last failure settles the request, and a
// failure stops a plan waiting for this moment's check: no answer can
// come to a request that never arrived.
func (s *Service) recordHook(ctx context.Context, h *hookRow, n int, att channel.Attempt, took time.Duration, sendErr error) error {
	ce := channel.Classify(sendErr)
	status := "success"
	errText := ""
	var wait time.Duration
	if ce != nil {
		status = "failed"
		errText = ce.Error()
		if ce.Retry && n <= len(s.retries) {
			status = "pending"
			wait = max(s.retries[n-1], ce.RetryAfter)
		}
	}
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		// The plan first, as every other change of a plan takes its locks:
		// a delete locks the plan and then, cascading, its hooks.
		p, err := lockPlan(ctx, tx, h.PlanID)
		if err != nil {
			return err
		}
		attemptStatus := status
		if status == "pending" {
			attemptStatus = "failed"
		}
		if _, err := tx.Exec(ctx, `INSERT INTO release_plan_hook_attempts
			(id, hook_id, attempt, status, request, status_code, response, error, duration_ms, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			id.New("pha"), h.ID, n, attemptStatus, mustJSON(att.Request), att.StatusCode, att.Response, errText,
			took.Milliseconds(), s.stamp()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE release_plan_hooks SET status = $2, attempts = $3, error = $4, updated_at = $5 WHERE id = $1`,
			h.ID, status, n, errText, s.stamp()); err != nil {
			return err
		}
		if status == "pending" {
			return nil
		}
		detail := fmt.Sprintf("%s hook delivered (HTTP %d, attempt %d)", h.HookEvent, att.StatusCode, n)
		if status == "failed" {
			detail = fmt.Sprintf("%s hook failed after %d attempt(s): %s", h.HookEvent, n, errText)
		}
		if err := s.writeLog(ctx, tx, p, SystemActor, logEntry{Action: "hook", Detail: detail}); err != nil {
			return err
		}
		if ev, ok := waitingFor(p.Status); status == "failed" && ok && ev == h.HookEvent && p.InstanceCode == h.InstanceCode {
			return s.checkFailed(ctx, tx, p, SystemActor, "check_failed", "the hook request failed: "+errText)
		}
		return nil
	})
	if ae := apperr.From(err); ae != nil && ae.Status == http.StatusNotFound {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	if status == "pending" {
		return river.JobSnooze(wait)
	}
	return nil
}

// Hooks lists a plan's hook requests with their attempts, newest first.
func (s *Service) Hooks(ctx context.Context, planID string) ([]HookDelivery, error) {
	if _, err := loadPlan(ctx, s.db, planID, ""); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, plan_id, instance_code, hook_event, body, status, attempts, error, created_at, updated_at
		FROM release_plan_hooks WHERE plan_id = $1 ORDER BY id DESC`, planID)
	if err != nil {
		return nil, err
	}
	out := []HookDelivery{}
	for rows.Next() {
		var d HookDelivery
		if err := rows.Scan(&d.ID, &d.PlanID, &d.InstanceCode, &d.HookEvent, &d.Body, &d.Status, &d.Attempts, &d.Error,
			&d.CreatedAt, &d.UpdatedAt); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		ar, err := s.db.Query(ctx, `SELECT attempt, status, request, status_code, response, error, duration_ms, created_at
			FROM release_plan_hook_attempts WHERE hook_id = $1 ORDER BY attempt`, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].History = []HookAttempt{}
		for ar.Next() {
			var a HookAttempt
			var req string
			if err := ar.Scan(&a.Attempt, &a.Status, &req, &a.StatusCode, &a.Response, &a.Error, &a.DurationMS, &a.CreatedAt); err != nil {
				ar.Close()
				return nil, err
			}
			a.Request = json.RawMessage(req)
			out[i].History = append(out[i].History, a)
		}
		ar.Close()
		if err := ar.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
