package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpenRoundTripAndWrongKey(t *testing.T) {
	t.Parallel()
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	b1, _ := NewBox(k1)
	b2, _ := NewBox(k2)
	sealed, err := b1.SealString("SEC-very-secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "very-secret") {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := b1.SealString("SEC-very-secret")
	if again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	pt, err := b1.Open(sealed)
	if err != nil || string(pt) != "SEC-very-secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := b2.Open(sealed); err != ErrWrongKey {
		t.Fatalf("Open with another key: %v, want ErrWrongKey", err)
	}
}

func TestKeyFileIsCreatedOnceWithMode0600(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, created, err := LoadOrCreateKeyFile(dir)
	if err != nil || !created || len(k1) != 32 {
		t.Fatalf("first load: %v %v %d", err, created, len(k1))
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	k2, created, err := LoadOrCreateKeyFile(dir)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load changed the key or recreated it: %v %v", err, created)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	if _, err := ParseKey("AAAA"); err == nil {
		t.Fatal("a 3-byte key was accepted")
	}
	if _, err := ParseKey("not base64 !!"); err == nil {
		t.Fatal("non-base64 was accepted")
	}
	if k, err := ParseKey("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="); err != nil || len(k) != 32 {
		t.Fatalf("valid key refused: %v", err)
	}
}

func TestMaskURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"https://oapi.dingtalk.com/robot/send?access_token=abc123":                                          "https://oapi.dingtalk.com/robot/send?access_token=******",
		"https://open.feishu.cn/open-apis/bot/v2/hook/1234-uuid":                                            "https://open.feishu.cn/open-apis/bot/v2/hook/******",
		"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KKK&debug=1":                                  "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=******&debug=1",
		"https://user:pw@example.com/x":                                                                     "https://******@example.com/x",
		"https://hooks.slack.com/services/T000/B000/XXXXSECRET":                                             "https://hooks.slack.com/services/T000/B000/******",
		"https://discord.com/api/webhooks/123/tok-en":                                                       "https://discord.com/api/webhooks/123/******",
		"https://discord.com/api/v10/webhooks/123/tok-en?wait=true":                                         "https://discord.com/api/v10/webhooks/123/******?wait=true",
		"https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIG": "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=******",
		"https://example.com/services/status":                                                               "https://example.com/services/status",
		"::not a url":                                                                                       Masked,
	}
	for in, want := range cases {
		if got := MaskURL(in); got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeepMasked(t *testing.T) {
	t.Parallel()
	prev := map[string]any{"sign_secret": "old", "webhook_url": "https://x/robot?access_token=T"}
	next := map[string]any{"sign_secret": Masked, "webhook_url": "https://x/robot?access_token=******"}
	KeepMasked(next, prev, []string{"sign_secret", "webhook_url"})
	if next["sign_secret"] != "old" || next["webhook_url"] != prev["webhook_url"] {
		t.Fatalf("masked values not kept: %v", next)
	}
}
