# Reference values for pyglmm.glmer from lme4 (run from the repository root):
#   Rscript tools/reference/glmer.R
# Writes tests/fixtures/glmer/<name>.json, and the simulated data sets as CSV files beside them.
suppressMessages({library(lme4); library(jsonlite)})
d <- "src/pyglmm/datasets/data/"
out <- "tests/fixtures/glmer/"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
nn <- function(x) as.numeric(x)

cb <- read.csv(paste0(d, "cbpp.csv"))
cb$herd <- factor(cb$herd, levels = 1:15); cb$period <- factor(cb$period, levels = 1:4)
cb$obs <- factor(seq_len(nrow(cb)), levels = seq_len(nrow(cb)))

# ---- simulated data (written to CSV so that pyglmm reads exactly the same rows) ----
set.seed(101)
site <- rep(1:12, each = 4 * 6 * 2); plot <- rep(rep(1:4, each = 6 * 2), 12)
year <- rep(rep(1:6, each = 2), 48)
x <- round(rnorm(length(site)), 4)
eta <- 0.5 + 0.3 * x + rnorm(12, sd = 0.5)[site] + rnorm(48, sd = 0.3)[(site - 1) * 4 + plot] +
  rnorm(6, sd = 0.4)[year] + rnorm(12, sd = 0.2)[site] * x
pois <- data.frame(y = rpois(length(eta), exp(eta)), x = x, site = site, plot = plot, year = year)
write.csv(pois, paste0(out, "poisson_sim.csv"), row.names = FALSE)

set.seed(202)
subj <- rep(1:40, each = 25); item <- rep(1:25, 40)
x <- round(rnorm(1000), 4)
eta <- -0.3 + 0.7 * x + rnorm(40, sd = 1)[subj] + rnorm(25, sd = 0.6)[item]
binx <- data.frame(y = rbinom(1000, 1, plogis(eta)), x = x, subj = subj, item = item)
write.csv(binx, paste0(out, "binomial_crossed.csv"), row.names = FALSE)

set.seed(303)
g <- rep(1:20, each = 15); x <- round(rnorm(300), 4)
mu <- exp(1 + 0.5 * x + rnorm(20, sd = 0.4)[g])
gam <- data.frame(y = signif(rgamma(300, shape = 5, rate = 5 / mu), 6), x = x, g = g)
write.csv(gam, paste0(out, "gamma_sim.csv"), row.names = FALSE)

set.seed(404)
g <- rep(1:25, each = 16); x <- round(rnorm(400), 4)
mu <- exp(1 + 0.4 * x + rnorm(25, sd = 0.5)[g])
nb <- data.frame(y = rnbinom(400, size = 2, mu = mu), x = x, g = g)
write.csv(nb, paste0(out, "negbin_sim.csv"), row.names = FALSE)

set.seed(505)
g <- rep(1:15, each = 20); x <- round(runif(300), 4)
mu <- exp(0.5 + 0.6 * x + rnorm(15, sd = 0.3)[g])
rig <- function(mu, lambda) {  # Michael, Schucany & Haas (1976)
  n <- length(mu); v <- rnorm(n)^2
  xx <- mu + mu^2 * v / (2 * lambda) - mu / (2 * lambda) * sqrt(4 * mu * lambda * v + mu^2 * v^2)
  ifelse(runif(n) <= mu / (mu + xx), xx, mu^2 / xx)
}
ig <- data.frame(y = signif(rig(mu, 20), 6), x = x, g = g)
write.csv(ig, paste0(out, "invgauss_sim.csv"), row.names = FALSE)

rd <- function(f) { v <- read.csv(paste0(out, f)); v }
pois <- rd("poisson_sim.csv")
for (v in c("site", "plot", "year")) pois[[v]] <- factor(pois[[v]], levels = sort(unique(pois[[v]])))
binx <- rd("binomial_crossed.csv")
for (v in c("subj", "item")) binx[[v]] <- factor(binx[[v]], levels = sort(unique(binx[[v]])))
gam <- rd("gamma_sim.csv"); gam$g <- factor(gam$g, levels = 1:20)
nb <- rd("negbin_sim.csv"); nb$g <- factor(nb$g, levels = 1:25)
ig <- rd("invgauss_sim.csv"); ig$g <- factor(ig$g, levels = 1:15)

fam_list <- function(f) list(family = f$family, link = f$link)

ref <- function(name, m, dataset, pars = list(), pars0 = list(), newdata = NULL, profile = FALSE,
                notes = "", nb_model = FALSE) {
  cl <- getCall(m)
  nAGQ <- if (is.null(cl$nAGQ)) 1L else eval(cl$nAGQ)
  vc <- as.data.frame(VarCorr(m))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  V <- as.matrix(vcov(m))
  Vrx <- as.matrix(vcov(m, use.hessian = FALSE))
  s <- summary(m)
  fam <- family(m)
  devf <- NULL
  # deviance functions with a tight PIRLS tolerance (lme4's default tolPwrss = 1e-7 leaves
  # errors of ~1e-6 relative in single evaluations)
  tctl <- glmerControl(tolPwrss = 1e-13)
  if (length(pars) && !nb_model) devf <- update(m, devFunOnly = TRUE, control = tctl)
  devf0 <- NULL
  if (length(pars0) && !nb_model) devf0 <- update(m, nAGQ = 0L, devFunOnly = TRUE, control = tctl)
  # the same model refitted with a tight PIRLS tolerance and BOBYQA in both stages: the exact
  # optimum of lme4's objective, to which parameters are compared at 1e-4
  tight <- NULL
  if (!nb_model) {
    m2 <- suppressWarnings(update(m, control = glmerControl(tolPwrss = 1e-12,
                                                           optimizer = c("bobyqa", "bobyqa"))))
    tight <- list(minus2loglik = -2 * as.numeric(logLik(m2)), theta = nn(getME(m2, "theta")),
                  fixef = nn(fixef(m2)), se = nn(sqrt(diag(as.matrix(vcov(m2))))),
                  deviance = deviance(m2))
  }
  pr <- sum(residuals(m, type = "pearson")^2)
  res <- list(
    name = name, dataset = dataset, formula = deparse(formula(m), width.cutoff = 500L),
    family = fam$family, link = fam$link, nAGQ = nAGQ, notes = notes,
    deviance = deviance(m), minus2loglik = -2 * as.numeric(logLik(m)),
    loglik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
    aic = AIC(m), bic = BIC(m), nobs = nobs(m), df_residual = df.residual(m),
    devcomp_cmp = as.list(m@devcomp$cmp), optimum = m@optinfo$val,
    fixef = as.list(fixef(m)), fixef_names = names(fixef(m)),
    se = nn(sqrt(diag(V))), vcov = unname(V), vcov_rx = unname(Vrx),
    se_rx = nn(sqrt(diag(Vrx))),
    hessian_used = !is.null(m@optinfo$derivs),
    coef_z = nn(coef(s)[, 3]), coef_p = nn(coef(s)[, 4]),
    sigma = sigma(m), theta = nn(getME(m, "theta")), theta_names = names(getME(m, "theta")),
    varcorr = list(group = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    ranef = list(grpvar = as.character(re$grpvar), term = as.character(re$term),
                 grp = as.character(re$grp), condval = re$condval, condsd = re$condsd),
    u = nn(getME(m, "u")),
    fitted = nn(fitted(m)), linpred = nn(predict(m)),
    fitted_fixed = nn(predict(m, re.form = NA, type = "response")),
    resid_deviance = nn(residuals(m, type = "deviance")),
    resid_pearson = nn(residuals(m, type = "pearson")),
    resid_response = nn(residuals(m, type = "response")),
    resid_working = nn(residuals(m, type = "working")),
    pearson_chisq = pr, pearson_ratio = pr / df.residual(m),
    singular = isSingular(m), feval = m@optinfo$feval,
    conv_messages = as.character(unlist(m@optinfo$conv$lme4$messages)),
    summary = paste(capture.output(print(s, correlation = TRUE)), collapse = "\n"),
    wald = unname(as.matrix(confint(m, method = "Wald", parm = "beta_"))),
    devfun_pars = lapply(pars, nn),
    devfun_value = if (is.null(devf)) list() else sapply(pars, function(p) devf(p)),
    devfun0_theta = lapply(pars0, nn),
    devfun0_value = if (is.null(devf0)) list() else sapply(pars0, function(p) devf0(p)),
    tight = tight
  )
  if (nb_model) {
    res$nb_theta <- getME(m, "glmer.nb.theta")
  }
  if (!is.null(newdata)) {
    res$newdata <- as.list(newdata)
    res$predict_link <- nn(predict(m, newdata = newdata, allow.new.levels = TRUE))
    res$predict_response <- nn(predict(m, newdata = newdata, allow.new.levels = TRUE,
                                       type = "response"))
    res$predict_fixed_link <- nn(predict(m, newdata = newdata, re.form = NA))
  }
  if (profile) {
    ci <- confint(m, method = "profile", oldNames = FALSE)
    res$profile_ci <- unname(as.matrix(ci)); res$profile_ci_names <- rownames(ci)
  }
  writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE),
             paste0(out, name, ".json"))
  cat(name, ": deviance", res$deviance, " -2logLik", res$minus2loglik, " feval", res$feval, "\n")
}

f_cb <- cbind(incidence, size - incidence) ~ period + (1 | herd)
m <- glmer(f_cb, cb, family = binomial)
nd <- data.frame(period = factor(c("1", "2", "4", "3"), levels = 1:4),
                 herd = c("1", "5", "99", "99"), size = c(10, 10, 10, 5), incidence = 0)
ref("cbpp_laplace", m, "cbpp", newdata = nd, profile = TRUE,
    pars = list(c(1, -1, -1, -1, -1), c(0.5, -1.5, -0.9, -1.1, -1.6), c(0, -1, 0, 0, 0)),
    pars0 = list(1, 0.3, 0))
m <- glmer(f_cb, cb, family = binomial, nAGQ = 25)
ref("cbpp_agq25", m, "cbpp", pars = list(c(1, -1, -1, -1, -1), c(0.5, -1.5, -0.9, -1.1, -1.6)))
m <- glmer(f_cb, cb, family = binomial, nAGQ = 5)
ref("cbpp_agq5", m, "cbpp", pars = list(c(0.7, -1.3, -1, -1.1, -1.5)))
m <- glmer(f_cb, cb, family = binomial, nAGQ = 0)
ref("cbpp_nagq0", m, "cbpp")
m <- glmer(incidence / size ~ period + (1 | herd), cb, family = binomial, weights = size)
ref("cbpp_proportion", m, "cbpp", notes = "proportions with weights = size")
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs), cb,
           family = binomial)
ref("cbpp_obs", m, "cbpp", notes = "observation-level random effect (overdispersion)",
    pars = list(c(0.8, 0.5, -1.4, -1, -1.2, -1.6)))
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cb,
           family = binomial(link = "probit"))
ref("cbpp_probit", m, "cbpp")

m <- glmer(y ~ x + (1 | site/plot) + (1 | year), pois, family = poisson)
ref("poisson_nested_crossed", m, "poisson_sim.csv",
    pars = list(c(0.5, 0.5, 0.5, 0.4, 0.3), c(0.2, 0.7, 0.3, 0.6, 0.2)))
m <- glmer(y ~ x + (1 + x | site), pois, family = poisson)
ref("poisson_slope", m, "poisson_sim.csv", pars = list(c(0.5, 0.1, 0.3, 0.5, 0.3)))
m <- glmer(y ~ x + (1 | site) + (1 | year), pois, family = poisson, offset = log(rep(2, nrow(pois))))
ref("poisson_offset", m, "poisson_sim.csv", notes = "offset = log(2) for every row")

m <- glmer(y ~ x + (1 | subj) + (1 | item), binx, family = binomial)
nd <- data.frame(x = c(0, 1, -0.5), subj = c("1", "2", "999"), item = c("3", "999", "999"), y = 0)
ref("binomial_crossed", m, "binomial_crossed.csv", newdata = nd,
    pars = list(c(1, 0.6, -0.3, 0.7), c(0.5, 0.2, 0, 1)), pars0 = list(c(1, 0.6), c(0.4, 0.9)))

m <- glmer(y ~ x + (1 | g), gam, family = Gamma(link = "log"))
ref("gamma_log", m, "gamma_sim.csv", pars = list(c(0.5, 1, 0.5)))

m <- glmer(y ~ x + (1 | g), ig, family = inverse.gaussian(link = "log"))
ref("invgauss_log", m, "invgauss_sim.csv")

m <- glmer.nb(y ~ x + (1 | g), nb)
ref("negbin", m, "negbin_sim.csv", nb_model = TRUE)
