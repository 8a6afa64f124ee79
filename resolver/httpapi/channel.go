package httpapi

import (
	"bytes"
	"net/http"
	"net/url"

	"mirrord/resolver"
)

func (a *API) handleChannelSet(w http.ResponseWriter, r *http.Request) {
	var req resolver.Request
	if !a.decodeRequest(w, r, &req, resolver.ChannelBodyChecks) {
		return
	}
	a.answerChannel(w, r, req, resolver.ChannelSet(a.state.State().App(req.AppID), req))
}

func (a *API) handleChannelGet(w http.ResponseWriter, r *http.Request) {
	var req resolver.Request
	if !a.decodeRequest(w, r, &req, resolver.ChannelBodyChecks) {
		return
	}
	a.answerChannel(w, r, req, resolver.ChannelGet(a.state.State().App(req.AppID), req))
}

func (a *API) handleChannelList(w http.ResponseWriter, r *http.Request) {
	req, ok := requestFromQuery(w, r.URL.Query(), resolver.ChannelListChecks)
	if !ok {
		return
	}
	a.answerChannel(w, r, req, resolver.ChannelList(a.state.State().App(req.AppID), req))
}

func (a *API) handleChannelDelete(w http.ResponseWriter, r *http.Request) {
	// Old plugins send a JSON body; Capgo reads query parameters. Accept
	// either, preferring a body when there is one.
	var req resolver.Request
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if !a.readBody(w, r, buf) {
		return
	}
	if len(bytes.TrimSpace(buf.Bytes())) > 0 {
		if !decodeInto(w, buf.Bytes(), &req, resolver.ChannelBodyChecks) {
			return
		}
	} else {
		var ok bool
		if req, ok = requestFromQuery(w, r.URL.Query(), resolver.ChannelDeleteChecks); !ok {
			return
		}
	}
	a.answerChannel(w, r, req, resolver.ChannelDelete(a.state.State().App(req.AppID), req))
}

// requestFromQuery builds a device request from query parameters (GET
// and DELETE channel_self send the info fields stringified) and checks
// it. No query at all is Capgo's "Cannot parse body".
func requestFromQuery(w http.ResponseWriter, q url.Values, c resolver.Checks) (resolver.Request, bool) {
	if len(q) == 0 {
		writeJSON(w, http.StatusBadRequest, refusalBody(resolver.EmptyRefusal(c)))
		return resolver.Request{}, false
	}
	req := resolver.RequestFromQuery(q)
	if ref := req.Check(c); ref.Code != "" {
		writeJSON(w, http.StatusBadRequest, refusalBody(ref))
		return req, false
	}
	return req, true
}

func (a *API) answerChannel(w http.ResponseWriter, r *http.Request, req resolver.Request, ans resolver.ChannelAnswer) {
	if ans.SetOverride != nil || ans.DeleteOverride {
		if a.overrides == nil {
			writeJSON(w, http.StatusOK, errBody("cannot_override", "this server does not keep server-side channel overrides"))
			return
		}
		var err error
		if ans.SetOverride != nil {
			err = a.overrides.SetDeviceChannel(r.Context(), req.AppID, req.DeviceID, *ans.SetOverride)
		} else {
			err = a.overrides.UnsetDeviceChannel(r.Context(), req.AppID, req.DeviceID)
		}
		if err != nil {
			a.log.Warn("channel override write failed", "app", req.AppID, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, errBody("cannot_override", "the channel override could not be stored now, try again later"))
			return
		}
	}
	status := ans.Status
	if status == 0 {
		status = http.StatusOK
	}
	writeJSON(w, status, ans.Payload())
}
