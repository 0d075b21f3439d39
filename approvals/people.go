package approvals

import (
	"slices"
	"strings"

	"github.com/mcp-guard/mcp-guard/identity"
)

// normEmail lower-cases and trims an email, so that comparisons ignore case.
func normEmail(e string) string {
	return strings.ToLower(strings.TrimSpace(e))
}

// normApprovers normalises emails and drops empty entries.
func normApprovers(a Approvers) Approvers {
	var out Approvers
	for _, e := range a.Emails {
		if e = normEmail(e); e != "" && !slices.Contains(out.Emails, e) {
			out.Emails = append(out.Emails, e)
		}
	}
	for _, g := range a.Groups {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(out.Groups, g) {
			out.Groups = append(out.Groups, g)
		}
	}
	return out
}

// lookup finds the directory entry of a Slack user or, failing that, of an
// email.
func (s *Service) lookup(slackUser, email string) (Person, bool) {
	if slackUser != "" {
		for _, p := range s.people {
			if p.SlackUser == slackUser {
				return p, true
			}
		}
	}
	if email = normEmail(email); email != "" {
		for _, p := range s.people {
			if p.Email == email {
				return p, true
			}
		}
	}
	return Person{}, false
}

// resolve turns the identity a decision arrives with into the person the
// rules judge: email and groups come from the directory when the person is
// in it, and groups never come from the caller of Decide. A Slack user whose
// directory email differs from the email given is left without an email, so
// they can approve nothing.
func (s *Service) resolve(by Person) Person {
	who := Person{
		Email:     normEmail(by.Email),
		SlackUser: by.SlackUser,
		Subject:   by.Subject,
		Issuer:    by.Issuer,
	}
	p, ok := s.lookup(by.SlackUser, by.Email)
	if !ok {
		return who
	}
	if who.Email != "" && who.Email != p.Email {
		who.Email = ""
		return who
	}
	who.Email = p.Email
	who.Groups = slices.Clone(p.Groups)
	if who.SlackUser == "" {
		who.SlackUser = p.SlackUser
	}
	if who.Subject == "" {
		who.Subject, who.Issuer = p.Subject, p.Issuer
	}
	return who
}

// isRequester reports whether who is, as far as anything can tell, the
// caller who opened r: same verified email, same OIDC subject and issuer,
// or the Slack user or email that the directory gives the caller.
func (s *Service) isRequester(r *Request, who Person) bool {
	c := r.Caller
	if c.Email != "" && who.Email != "" && normEmail(c.Email) == who.Email {
		return true
	}
	if who.Subject != "" && who.Subject == c.Subject && who.Issuer == c.Issuer {
		return true
	}
	for _, p := range s.people {
		if !isCaller(p, c) {
			continue
		}
		if who.SlackUser != "" && p.SlackUser == who.SlackUser {
			return true
		}
		if who.Email != "" && p.Email == who.Email {
			return true
		}
	}
	return false
}

// isCaller reports whether directory entry p describes caller c.
func isCaller(p Person, c identity.Caller) bool {
	if c.Email != "" && p.Email == normEmail(c.Email) {
		return true
	}
	return p.Subject != "" && p.Subject == c.Subject && p.Issuer == c.Issuer
}

// allowed reports whether who is on r's approver list, by email or by a
// directory group. A person without an email is never allowed.
func allowed(r *Request, who Person) bool {
	if who.Email == "" {
		return false
	}
	if slices.Contains(r.Approvers.Emails, who.Email) {
		return true
	}
	for _, g := range who.Groups {
		if slices.Contains(r.Approvers.Groups, g) {
			return true
		}
	}
	return false
}

// eligible returns the emails of everyone who could approve r: listed
// emails and directory members of listed groups, minus the requester.
func (s *Service) eligible(r *Request) []string {
	var out []string
	add := func(p Person) {
		if !allowed(r, p) || s.isRequester(r, p) || slices.Contains(out, p.Email) {
			return
		}
		out = append(out, p.Email)
	}
	for _, e := range r.Approvers.Emails {
		add(s.resolve(Person{Email: e}))
	}
	for _, p := range s.people {
		add(s.resolve(p))
	}
	return out
}
