# Reference values for pyglmm.glm from R's stats::glm and MASS (run from the repository root):
#   Rscript tools/reference/glm.R
# Writes JSON fixtures to tests/fixtures/glm/: one file per model, plus families.json
# (family/link functions on grids) and anova.json.
suppressMessages({library(MASS); library(jsonlite)})
d <- "src/pyglmm/datasets/data/"
out <- "tests/fixtures/glm/"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

ceb <- read.table(paste0(d, "ceb.dat"), header = TRUE)
ceb$dur <- factor(ceb$dur, levels = c("0-4", "10-14", "15-19", "20-24", "25-29", "5-9"))
ceb$res <- factor(ceb$res, levels = c("rural", "Suva", "urban"))
ceb$educ <- factor(ceb$educ, levels = c("lower", "none", "sec+", "upper"))
ss <- read.csv(paste0(d, "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject, levels = sort(unique(ss$Subject)))
cb <- read.csv(paste0(d, "cbpp.csv"))
cb$herd <- factor(cb$herd, levels = 1:15); cb$period <- factor(cb$period, levels = 1:4)
M <- read.csv(paste0(d, "Machines.csv"))
M$Worker <- factor(M$Worker, levels = 1:6); M$Machine <- factor(M$Machine, levels = c("A", "B", "C"))

wj <- function(x, file) write_json(x, paste0(out, file), digits = NA, auto_unbox = TRUE,
                                   na = "null", null = "null")
full <- function(m, v) { r <- setNames(rep(NA_real_, length(coef(m))), names(coef(m)))
  r[names(v)] <- v; unname(r) }
catch_warnings <- function(expr) {
  ws <- character()
  val <- withCallingHandlers(expr, warning = function(w) {
    ws <<- c(ws, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(value = val, warnings = ws)
}

ref <- function(name, call_expr, dataset, formula_py, family_py, link_py = NULL,
                weights_py = NULL, offset_py = NULL, theta_py = NULL, profile = NULL,
                contrasts_py = NULL,
                newdata_rows = NULL, notes = "", data_inline = NULL) {
  cw <- catch_warnings(eval(call_expr))
  m <- cw$value
  s <- summary(m)
  cf <- coef(m)
  sc <- s$coefficients
  ll <- tryCatch(as.numeric(logLik(m)), error = function(e) NA_real_)
  bic <- tryCatch(BIC(m), error = function(e) NA_real_)
  V <- vcov(m)
  res <- list(
    name = name, dataset = dataset, notes = notes, r_call = deparse(call_expr, width.cutoff = 500L),
    formula = formula_py, family = family_py, link = link_py, weights = weights_py,
    offset = offset_py, theta = theta_py, contrasts = contrasts_py,
    coef_names = names(cf), coef = unname(cf),
    se = full(m, sc[, 2]), statistic = full(m, sc[, 3]), p_value = full(m, sc[, 4]),
    aliased = unname(is.na(cf)),
    deviance = deviance(m), null_deviance = m$null.deviance,
    df_resid = m$df.residual, df_null = m$df.null, rank = m$rank,
    aic = if (is.null(m$aic)) NA else m$aic, loglik = ll, bic = bic,
    dispersion = s$dispersion, iter = m$iter, converged = m$converged,
    fitted = unname(fitted(m)), linear_predictor = unname(m$linear.predictors),
    working_weights = unname(m$weights), prior_weights = unname(m$prior.weights),
    vcov = unname(as.matrix(V)),
    summary_text = capture.output(print(s)),
    print_text = capture.output(print(m)),
    warnings = cw$warnings
  )
  if (inherits(m, "negbin")) { res$theta_hat <- m$theta; res$theta_se <- m$SE.theta;
    res$twologlik <- m$twologlik }
  ci_w <- confint.default(m)
  res$confint_wald <- unname(ci_w)
  if (!is.null(profile)) {
    ci <- suppressMessages(confint(m, parm = profile))
    ci <- matrix(ci, ncol = 2)
    res$confint_profile <- list(parm = profile, ci = ci)
  }
  if (!is.null(newdata_rows)) {
    nd <- eval(parse(text = dataset))[newdata_rows, , drop = FALSE]
    pl <- predict(m, newdata = nd, type = "link", se.fit = TRUE)
    pr <- predict(m, newdata = nd, type = "response", se.fit = TRUE)
    p0 <- predict(m, type = "response", se.fit = TRUE)
    res$predict <- list(rows = newdata_rows, link_fit = unname(pl$fit), link_se = unname(pl$se.fit),
                        response_fit = unname(pr$fit), response_se = unname(pr$se.fit),
                        residual_scale = pl$residual.scale,
                        insample_response_se = unname(p0$se.fit))
  }
  if (!is.null(data_inline)) res$data <- data_inline
  wj(res, paste0(name, ".json"))
  invisible(m)
}

# ---- chapter 3: CEB Poisson ---------------------------------------------------------------
ref("ceb_poisson", quote(glm(round(y) ~ dur + res + educ, family = poisson(link = "log"),
                             data = ceb, offset = log(n))),
    "ceb", "round(y) ~ dur + res + educ", "poisson", offset_py = "log(n)",
    profile = c("(Intercept)", "dur10-14", "resSuva", "educsec+"), newdata_rows = c(1, 2, 10, 40, 70))
ref("ceb_poisson_formula_offset", quote(glm(round(y) ~ dur + res + educ + offset(log(n)),
                                            family = poisson, data = ceb)),
    "ceb", "round(y) ~ dur + res + educ + offset(log(n))", "poisson",
    newdata_rows = c(1, 5, 33))
ref("ceb_quasipoisson", quote(glm(round(y) ~ dur + res + educ, family = quasipoisson,
                                  data = ceb, offset = log(n))),
    "ceb", "round(y) ~ dur + res + educ", "quasipoisson", offset_py = "log(n)",
    profile = c("dur10-14", "educnone"), newdata_rows = c(1, 2, 3))
ref("ceb_poisson_contr_sum", quote(glm(round(y) ~ dur + res + educ, family = poisson, data = ceb,
                                       offset = log(n), contrasts = list(res = "contr.sum",
                                       educ = "contr.helmert"))),
    "ceb", "round(y) ~ dur + res + educ", "poisson", offset_py = "log(n)",
    contrasts_py = list(res = "contr.sum", educ = "contr.helmert"), newdata_rows = c(1, 2))
ref("ceb_poisson_sqrt", quote(glm(round(y) ~ dur + res, family = poisson(link = "sqrt"), data = ceb)),
    "ceb", "round(y) ~ dur + res", "poisson", link_py = "sqrt")
ref("ceb_poisson_identity", quote(glm(round(y) ~ n + res, family = poisson(link = "identity"),
                                      data = ceb)),
    "ceb", "round(y) ~ n + res", "poisson", link_py = "identity")
ref("ceb_poisson_weights", quote(glm(round(mean * 10) ~ dur + educ, family = poisson, data = ceb,
                                     weights = n / 10)),
    "ceb", "round(mean * 10) ~ dur + educ", "poisson", weights_py = "n / 10",
    notes = "prior weights (non-integer weights: R's aic uses them as multipliers)")
# aliased column: I(n * 2) and n are collinear, R drops the later one (n)
ref("ceb_rank_deficient", quote(glm(round(y) ~ res + I(n * 2) + n, family = poisson, data = ceb)),
    "ceb", "round(y) ~ res + I(n * 2) + n", "poisson", newdata_rows = c(1, 2))
# Gamma family with three links
ref("ceb_gamma_log", quote(glm(mean ~ dur + res + educ, family = Gamma(link = "log"), data = ceb,
                               weights = n)),
    "ceb", "mean ~ dur + res + educ", "Gamma", link_py = "log", weights_py = "n",
    profile = c("dur10-14", "resSuva"), newdata_rows = c(1, 7, 50))
ref("ceb_gamma_inverse", quote(glm(mean ~ dur + res + educ, family = Gamma, data = ceb)),
    "ceb", "mean ~ dur + res + educ", "Gamma", profile = c("(Intercept)", "dur5-9"))
ref("sleep_gamma_identity", quote(glm(Reaction ~ Days, family = Gamma(link = "identity"), data = ss)),
    "ss", "Reaction ~ Days", "Gamma", link_py = "identity", newdata_rows = c(1, 2, 3))
ref("sleep_inverse_gaussian", quote(glm(Reaction ~ Days, family = inverse.gaussian, data = ss)),
    "ss", "Reaction ~ Days", "inverse.gaussian", profile = c("Days"), newdata_rows = c(1, 10))
ref("sleep_inverse_gaussian_log", quote(glm(Reaction ~ Days + Subject,
                                            family = inverse.gaussian(link = "log"), data = ss)),
    "ss", "Reaction ~ Days + Subject", "inverse.gaussian", link_py = "log")
ref("sleep_inverse_gaussian_inverse", quote(glm(Reaction ~ Days,
                                            family = inverse.gaussian(link = "inverse"), data = ss)),
    "ss", "Reaction ~ Days", "inverse.gaussian", link_py = "inverse")
ref("ceb_gaussian_weights", quote(glm(mean ~ dur + res + educ, family = gaussian, data = ceb,
                                      weights = n)),
    "ceb", "mean ~ dur + res + educ", "gaussian", weights_py = "n", profile = c("dur10-14"),
    newdata_rows = c(1, 2))
# zero prior weights: rows drop out of df, dispersion and AIC as R handles them
ref("ceb_gamma_zero_weights", quote(glm(mean ~ dur + res, family = Gamma(link = "log"), data = ceb,
                                        weights = n * (n > 10))),
    "ceb", "mean ~ dur + res", "Gamma", link_py = "log", weights_py = "n * (n > 10)",
    profile = c("dur10-14"), newdata_rows = c(1, 2))
ref("ceb_poisson_zero_weights", quote(glm(round(y) ~ dur + educ, family = poisson, data = ceb,
                                          weights = 1 * (n > 10), offset = log(n))),
    "ceb", "round(y) ~ dur + educ", "poisson", weights_py = "1 * (n > 10)", offset_py = "log(n)")
# binomial with an offset (complementary log-log: the offset log(n) models exposure)
ref("ceb_binomial_cloglog_offset", quote(glm(cbind(round(y), 10 * n - round(y)) ~ dur + res +
                                             offset(log(n)), family = binomial(link = "cloglog"),
                                             data = ceb)),
    "ceb", "cbind(round(y), 10 * n - round(y)) ~ dur + res + offset(log(n))", "binomial",
    link_py = "cloglog", profile = c("resSuva"), newdata_rows = c(1, 3))
ref("ceb_gaussian_log", quote(glm(mean ~ dur + res, family = gaussian(link = "log"), data = ceb)),
    "ceb", "mean ~ dur + res", "gaussian", link_py = "log")
# binomial: cbind, proportions + weights, 0/1; links
for (lk in c("logit", "probit", "cloglog", "cauchit")) {
  ref(paste0("cbpp_binomial_", lk),
      substitute(glm(cbind(incidence, size - incidence) ~ period, family = binomial(link = L),
                     data = cb), list(L = lk)),
      "cb", "cbind(incidence, size - incidence) ~ period", "binomial", link_py = lk,
      profile = if (lk == "logit") c("(Intercept)", "period2", "period4") else NULL,
      newdata_rows = c(1, 2, 3))
}
ref("cbpp_binomial_proportion", quote(glm(incidence / size ~ period, family = binomial, data = cb,
                                          weights = size)),
    "cb", "incidence / size ~ period", "binomial", weights_py = "size", newdata_rows = c(1, 4))
ref("cbpp_quasibinomial", quote(glm(cbind(incidence, size - incidence) ~ period + herd,
                                    family = quasibinomial, data = cb)),
    "cb", "cbind(incidence, size - incidence) ~ period + herd", "quasibinomial",
    profile = c("period2", "period3"))
ref("sleep_binomial_01", quote(glm(Reaction > 300 ~ Days, family = binomial, data = ss)),
    "ss", "Reaction > 300 ~ Days", "binomial", profile = c("Days"), newdata_rows = c(1, 2, 3))
ref("sleep_binomial_01_probit", quote(glm(Reaction > 300 ~ Days, family = binomial(link = "probit"),
                                          data = ss)),
    "ss", "Reaction > 300 ~ Days", "binomial", link_py = "probit")
# negative binomial: known theta and theta estimated (glm.nb)
ref("cbpp_negbin_theta2", quote(glm(incidence ~ period + offset(log(size)),
                                    family = negative.binomial(2), data = cb)),
    "cb", "incidence ~ period + offset(log(size))", "negative.binomial", theta_py = 2,
    newdata_rows = c(1, 2))
ref("cbpp_glm_nb", quote(glm.nb(incidence ~ period + offset(log(size)), data = cb)),
    "cb", "incidence ~ period + offset(log(size))", "negative.binomial",
    newdata_rows = c(1, 2, 3))
ref("cbpp_glm_nb_size", quote(glm.nb(incidence ~ period + size, data = cb)),
    "cb", "incidence ~ period + size", "negative.binomial", profile = c("size"))
ref("cbpp_glm_nb_sqrt", quote(glm.nb(incidence ~ period, data = cb, link = sqrt)),
    "cb", "incidence ~ period", "negative.binomial", link_py = "sqrt")
# separation: y is 1 exactly when x > 5
sep <- data.frame(x = c(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), z = c(0.3, -1.2, 0.5, 2.1, -0.7, 1.1, 0.2,
                  -0.4, 0.9, -1.5), y = c(0, 0, 0, 0, 0, 1, 1, 1, 1, 1))
ref("separation", quote(glm(y ~ x + z, family = binomial, data = sep)), "sep", "y ~ x + z",
    "binomial", data_inline = sep, notes = "complete separation: huge coefficients, deviance ~ 0")

# ill-conditioned but full rank by R's rule: x2 - x has norm 1e-9 relative (> tol 1e-11)
set.seed(6)
ill <- data.frame(x = signif(rnorm(300), 15))
ill$x2 <- signif(ill$x + 1e-9 * rnorm(300), 15)
ill$y <- rpois(300, exp(0.3 + 0.2 * ill$x))
ref("ill_conditioned", quote(glm(y ~ x + x2, family = poisson, data = ill)), "ill", "y ~ x + x2",
    "poisson", data_inline = ill,
    notes = "coefficients are ill-determined (+-8e7); compare deviance and fitted values")

# summary with a given dispersion (z tests)
sdm <- glm(mean ~ dur, family = Gamma(link = "log"), data = ceb)
wj(list(formula = "mean ~ dur", family = "Gamma", link = "log", dispersion = 0.05,
        summary_text = capture.output(print(summary(sdm, dispersion = 0.05)))),
   "summary_dispersion.json")

# ---- analysis of deviance tables ------------------------------------------------------------
tab <- function(a) list(columns = colnames(a), rows = rownames(a),
                        values = unname(as.matrix(a)), heading = attr(a, "heading"),
                        text = capture.output(print(a)))
m1 <- glm(round(y) ~ dur + res + educ, family = poisson, data = ceb, offset = log(n))
m0 <- glm(round(y) ~ dur, family = poisson, data = ceb, offset = log(n))
m00 <- glm(round(y) ~ 1, family = poisson, data = ceb, offset = log(n))
q1 <- glm(round(y) ~ dur + res + educ, family = quasipoisson, data = ceb, offset = log(n))
q0 <- glm(round(y) ~ dur + educ, family = quasipoisson, data = ceb, offset = log(n))
g1 <- glm(mean ~ dur + res + educ, family = Gamma(link = "log"), data = ceb, weights = n)
g0 <- glm(mean ~ dur, family = Gamma(link = "log"), data = ceb, weights = n)
b1 <- glm(cbind(incidence, size - incidence) ~ period + herd, family = binomial, data = cb)
b0 <- glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = cb)
nb1 <- glm.nb(incidence ~ period + offset(log(size)), data = cb)
nb0 <- glm.nb(incidence ~ 1 + offset(log(size)), data = cb)
nbtab <- anova(nb0, nb1)
an <- list(
  cbpp_negbin_models = list(columns = names(nbtab), model = as.character(nbtab$Model),
                            theta = nbtab$theta, resid_df = nbtab[["Resid. df"]],
                            twologlik = nbtab[["   2 x log-lik."]], test = nbtab$Test,
                            df = nbtab[["   df"]], lr = nbtab[["LR stat."]],
                            p = nbtab[["Pr(Chi)"]], heading = attr(nbtab, "heading"),
                            text = capture.output(print(nbtab))),
  ceb_poisson_seq_chisq = tab(anova(m1, test = "Chisq")),
  ceb_poisson_seq_none = tab(anova(m1)),
  ceb_poisson_models_chisq = tab(anova(m00, m0, m1, test = "Chisq")),
  ceb_poisson_models_lrt = tab(anova(m0, m1, test = "LRT")),
  ceb_quasipoisson_seq_f = tab(anova(q1, test = "F")),
  ceb_quasipoisson_models_f = tab(anova(q0, q1, test = "F")),
  ceb_gamma_seq_f = tab(anova(g1, test = "F")),
  ceb_gamma_models_f = tab(anova(g0, g1, test = "F")),
  ceb_gamma_models_chisq = tab(anova(g0, g1, test = "Chisq")),
  cbpp_binomial_models_chisq = tab(anova(b0, b1, test = "Chisq")),
  cbpp_binomial_seq_chisq = tab(anova(b1, test = "Chisq")),
  ceb_poisson_seq_rao = tab(anova(m1, test = "Rao")),
  ceb_poisson_models_rao = tab(anova(m00, m0, m1, test = "Rao")),
  ceb_quasipoisson_seq_rao = tab(anova(q1, test = "Rao")),
  cbpp_binomial_models_rao = tab(anova(b1, b0, test = "Rao"))
)
wj(an, "anova.json")

# ---- Wald tests of linear hypotheses (as car::linearHypothesis, computed directly) ----------
wald <- function(m, L, rhs) {
  b <- coef(m); V <- vcov(m); d <- L %*% b - rhs
  W <- drop(t(d) %*% solve(L %*% V %*% t(L)) %*% d); q <- nrow(L)
  est <- summary(m)$dispersion != 1 || family(m)$family %in% c("gaussian", "Gamma",
                                                               "inverse.gaussian", "quasipoisson")
  list(L = unname(L), rhs = rhs, chisq = W, df = q, p_chisq = pchisq(W, q, lower.tail = FALSE),
       F = W / q, df2 = m$df.residual, p_F = pf(W / q, q, m$df.residual, lower.tail = FALSE))
}
L1 <- rbind(c(0, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0), c(0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0))
L2 <- rbind(c(0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0), c(0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0))
wj(list(ceb_poisson = wald(m1, L1, c(0, 0)), ceb_quasipoisson = wald(q1, L2, c(0, -0.1))),
   "wald.json")

# ---- families: link and variance functions, deviance residuals and AIC on grids -------------
eta_grid <- c(-3, -1.2, -0.3, 0.1, 0.8, 2.5)
fam_rows <- list()
add_family <- function(key, fam, y, mu, wt, eta, n = rep(1, length(y))) {
  dev <- sum(fam$dev.resids(y, mu, wt))
  fam_rows[[key]] <<- list(
    family = fam$family, link = fam$link, y = y, mu = mu, wt = wt, eta = eta, n = n,
    linkfun = fam$linkfun(mu), linkinv = fam$linkinv(eta), mu_eta = fam$mu.eta(eta),
    variance = fam$variance(mu), dev_resids = fam$dev.resids(y, mu, wt),
    aic = tryCatch(fam$aic(y, n, mu, wt, dev), error = function(e) NA_real_),
    valideta = fam$valideta(eta), validmu = fam$validmu(mu))
}
y01 <- c(0, 1, 1, 0, 1, 0); p <- c(0.1, 0.35, 0.5, 0.62, 0.9, 0.2); w6 <- c(1, 2, 1, 3, 1, 2)
for (lk in c("logit", "probit", "cloglog", "cauchit", "log")) {
  add_family(paste0("binomial_", lk), binomial(link = lk), y01, p * 0.5 + 0.05 * (lk == "log"), w6,
             if (lk == "log") -abs(eta_grid) else eta_grid)
}
yprop <- c(0, 0.25, 0.5, 0.75, 1, 0.4); nt <- c(4, 4, 2, 4, 3, 5)
add_family("binomial_trials", binomial(), yprop, p, nt, eta_grid, n = nt)
ycount <- c(0, 1, 3, 7, 2, 12); mucount <- c(0.5, 1.4, 2.2, 6.1, 3.3, 10.2)
for (lk in c("log", "identity", "sqrt")) {
  add_family(paste0("poisson_", lk), poisson(link = lk), ycount, mucount, w6,
             if (lk == "log") eta_grid else abs(eta_grid) + 0.1)
}
ypos <- c(0.3, 1.2, 2.5, 0.8, 4.1, 1.9); mupos <- c(0.5, 1.0, 2.2, 1.1, 3.0, 2.4)
for (lk in c("inverse", "identity", "log")) {
  add_family(paste0("Gamma_", lk), Gamma(link = lk), ypos, mupos, w6,
             if (lk == "log") eta_grid else abs(eta_grid) + 0.1)
}
for (lk in c("1/mu^2", "inverse", "identity", "log")) {
  add_family(paste0("inverse.gaussian_", lk), inverse.gaussian(link = lk), ypos, mupos, w6,
             if (lk == "log") eta_grid else abs(eta_grid) + 0.1)
}
for (lk in c("identity", "log", "inverse")) {
  add_family(paste0("gaussian_", lk), gaussian(link = lk), ypos - 1, mupos, w6,
             if (lk == "identity") eta_grid else abs(eta_grid) + 0.1)
}
add_family("quasipoisson_log", quasipoisson(), ycount, mucount, w6, eta_grid)
add_family("quasibinomial_logit", quasibinomial(), y01, p, w6, eta_grid)
for (th in c(0.7, 2, 15)) for (lk in c("log", "sqrt", "identity")) {
  add_family(paste0("negbin_", th, "_", lk), negative.binomial(th, link = lk), ycount, mucount,
             w6, if (lk == "log") eta_grid else abs(eta_grid) + 0.1)
}
wj(fam_rows, "families.json")

# theta.ml on a fixed data set
mp <- fitted(glm(incidence ~ period, family = poisson, data = cb))
th <- theta.ml(cb$incidence, mp, limit = 25)
wj(list(y = cb$incidence, mu = unname(mp), theta = as.numeric(th), se = attr(th, "SE")),
   "theta_ml.json")
cat("wrote", length(list.files(out)), "files to", out, "\n")
