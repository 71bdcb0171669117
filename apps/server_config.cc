#include "apps/server_config.h"

#include "absl/strings/str_cat.h"
#include "sessionctx/base_fields.h"
#include "sessionctx/write_rules.h"

namespace sessionctx::apps {
namespace {

absl::StatusOr<TenantDefaults> ReadDefaults(const Json& j, const std::string& where) {
  if (!j.is_object()) return absl::InvalidArgumentError(where + " must be an object");
  TenantDefaults d;
  for (const BaseField& f : kBaseFields) {
    if (f.tenant_default == nullptr) continue;
    auto it = j.find(f.name);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".", f.name, " must be a string"));
    }
    if (absl::Status st = f.validate(it->get<std::string>()); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
    }
    d.*f.tenant_default = it->get<std::string>();
  }
  return d;
}

}  // namespace

absl::Status ApplyConfig(const std::string& text, ServiceOptions& service, JwtOptions& jwt) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("config is not a JSON object");
  if (auto d = j.find("defaults"); d != j.end()) {
    absl::StatusOr<TenantDefaults> defaults = ReadDefaults(*d, "defaults");
    if (!defaults.ok()) return defaults.status();
    service.fallback_defaults = *defaults;
  }
  if (auto t = j.find("tenants"); t != j.end()) {
    if (!t->is_object()) return absl::InvalidArgumentError("tenants must be an object");
    for (auto it = t->begin(); it != t->end(); ++it) {
      if (absl::Status st = ValidateTenant(it.key()); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("tenants.", it.key(), ": ", st.message()));
      }
      absl::StatusOr<TenantDefaults> defaults = ReadDefaults(*it, "tenants." + it.key());
      if (!defaults.ok()) return defaults.status();
      service.tenant_defaults[it.key()] = *defaults;
    }
  }
  if (auto c = j.find("claims"); c != j.end()) {
    if (!c->is_object()) return absl::InvalidArgumentError("claims must be an object");
    const std::pair<const char*, std::string*> names[] = {
        {"tenant", &jwt.claims.tenant},
        {"sessionId", &jwt.claims.session_id},
        {"customerId", &jwt.claims.customer_id},
        {"scope", &jwt.claims.scope}};
    for (const auto& [name, out] : names) {
      auto it = c->find(name);
      if (it == c->end()) continue;
      if (!it->is_string() || it->get<std::string>().empty()) {
        return absl::InvalidArgumentError(absl::StrCat("claims.", name, " must be a non-empty string"));
      }
      *out = it->get<std::string>();
    }
  }
  if (auto l = j.find("jwtLeewaySeconds"); l != j.end()) {
    if (!l->is_number() || l->get<double>() < 0) {
      return absl::InvalidArgumentError("jwtLeewaySeconds must be a non-negative number");
    }
    jwt.leeway = absl::Seconds(l->get<double>());
  }
  return absl::OkStatus();
}

}  // namespace sessionctx::apps
