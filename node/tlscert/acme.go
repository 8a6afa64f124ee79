package tlscert

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ACMEConfig is what ACME needs: the names to get certificates for, the
// account's email, the CA's directory URL ("" = Let's Encrypt), a PEM
// file of roots to trust for the CA itself (a private ACME CA such as
// step-ca; "" = the system's), and a directory kept across restarts for
// the account, keys and certificates.
type ACMEConfig struct {
	Domains           []string
	Email, CA, CARoot string
	Storage           string
	Log               *slog.Logger
}

// ACME obtains and renews certificates with certmagic. It answers the
// TLS-ALPN-01 challenge on the node's own HTTPS listener, so the CA must
// reach that listener on port 443 of each domain (forward 443 to
// node.http when it listens elsewhere). HTTP-01 and DNS-01 are not used.
type ACME struct {
	cfg   ACMEConfig
	cache *certmagic.Cache
	magic *certmagic.Config
}

// NewACME prepares certificate management; nothing is fetched before Run.
func NewACME(cfg ACMEConfig) (*ACME, error) {
	logger := zap.New(slogCore{log: cfg.Log})
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           logger,
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: cfg.Storage},
		Logger:  logger,
	})
	issuer := certmagic.ACMEIssuer{CA: cfg.CA, Email: cfg.Email, Agreed: true,
		DisableHTTPChallenge: true, Logger: logger}
	if issuer.CA == "" {
		issuer.CA = certmagic.LetsEncryptProductionCA
	}
	if cfg.CARoot != "" {
		pool, err := CertPool(cfg.CARoot)
		if err != nil {
			cache.Stop()
			return nil, fmt.Errorf("tls.acme.ca_root: %w", err)
		}
		issuer.TrustedRoots = pool
	}
	magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(magic, issuer)}
	if len(cfg.Domains) > 0 {
		magic.DefaultServerName = cfg.Domains[0]
	}
	return &ACME{cfg: cfg, cache: cache, magic: magic}, nil
}

// GetCertificate is tls.Config.GetCertificate: the managed certificate,
// or the challenge certificate while the CA validates a domain.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// TLSConfig is ServerConfig with the TLS-ALPN-01 protocol offered too.
func (a *ACME) TLSConfig() *tls.Config {
	c := ServerConfig(a.GetCertificate)
	c.NextProtos = slices.Concat(c.NextProtos, a.magic.TLSConfig().NextProtos)
	return c
}

// Run obtains the certificates (from storage when they are there and
// valid, else from the CA), retrying with a growing wait (1 min to
// 1 h) while the CA cannot be reached or refuses, keeps them renewed
// until ctx ends, then stops the renewal loop. Obtaining runs in Run's
// own goroutine (certmagic's synchronous path) rather than certmagic's
// background job queue, so nothing writes to the ACME storage after Run
// returned.
func (a *ACME) Run(ctx context.Context) error {
	defer a.cache.Stop()
	for wait := time.Minute; ; wait = min(2*wait, time.Hour) {
		err := a.magic.ManageSync(ctx, a.cfg.Domains)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		a.log().Warn("tls: acme: no certificate yet; devices get no TLS handshake until one is obtained",
			"domains", a.cfg.Domains, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	<-ctx.Done()
	return nil
}

func (a *ACME) log() *slog.Logger {
	if a.cfg.Log != nil {
		return a.cfg.Log
	}
	return slog.New(slog.DiscardHandler)
}

// slogCore sends certmagic's zap logs to the node's slog logger.
// Field order is not kept (zap's map encoder).
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.log.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	return slogCore{log: c.log, fields: slices.Concat(c.fields, fields)}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range slices.Concat(c.fields, fields) {
		f.AddTo(enc)
	}
	args := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		args = append(args, k, v)
	}
	c.log.Log(context.Background(), slogLevel(e.Level), e.Message, args...)
	return nil
}

func (slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
