// Package id makes opaque, time-ordered identifiers such as
// "tsk_01jf3k8w2q9x7d5m4n6p8r0s2t". Ordering by id is ordering by creation,
// which is what cursor pagination and history listings want.
package id

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// Crockford's base32 in lower case: no i, l, o, u to misread.
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var (
	mu       sync.Mutex
	lastMS   uint64
	lastRand [10]byte
)

// New returns prefix + "_" + 26 characters: 48 bits of milliseconds and 80
// random bits, made monotonic within one process so that ids created in the
// same millisecond still sort in creation order.
func New(prefix string) string {
	mu.Lock()
	ms := uint64(time.Now().UnixMilli())
	if ms <= lastMS {
		ms = lastMS
		increment(&lastRand)
	} else {
		lastMS = ms
		_, _ = rand.Read(lastRand[:])
		lastRand[0] &= 0x7f // room to increment without overflowing into the time
	}
	var b [16]byte
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	copy(b[6:], lastRand[:])
	mu.Unlock()

	var sb strings.Builder
	sb.Grow(len(prefix) + 27)
	sb.WriteString(prefix)
	sb.WriteByte('_')
	sb.WriteString(encode(b))
	return sb.String()
}

func increment(r *[10]byte) {
	for i := len(r) - 1; i >= 0; i-- {
		r[i]++
		if r[i] != 0 {
			return
		}
	}
}

// encode writes 128 bits as 26 base32 characters, most significant first.
func encode(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
