package email

import (
	"crypto/x509"

	"github.com/herald-release/herald/internal/notify/channel"
)

// TrustRoots makes s verify servers against roots instead of the system's
// CAs: the test servers' certificate is self-signed. Per sender rather
// than package-wide, so parallel tests cannot disturb each other.
func TrustRoots(s channel.Sender, roots *x509.CertPool) channel.Sender {
	s.(*sender).roots = roots
	return s
}

var (
	MessageID  = messageID
	RenderHTML = renderHTML
	RenderText = renderText
)
