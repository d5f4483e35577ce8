# Reference values for pyglmm.diagnostics (residuals, influence measures, Shapiro-Wilk)
# from R's stats package. Run from the repository root:
#   Rscript tools/reference/diagnostics.R
# Writes one JSON file per model to tests/fixtures/diagnostics/<name>.json.
suppressMessages(library(jsonlite))
d <- "src/pyglmm/datasets/data/"
out <- "tests/fixtures/diagnostics/"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

ceb <- read.table(paste0(d, "ceb.dat"), header = TRUE)
ceb$dur <- factor(ceb$dur, levels = c("0-4", "10-14", "15-19", "20-24", "25-29", "5-9"))
ceb$res <- factor(ceb$res, levels = c("rural", "Suva", "urban"))
ceb$educ <- factor(ceb$educ, levels = c("lower", "none", "sec+", "upper"))
ss <- read.csv(paste0(d, "sleepstudy.csv"), row.names = 1)
ss$Subject <- factor(ss$Subject, levels = sort(unique(ss$Subject)))
M <- read.csv(paste0(d, "Machines.csv"), row.names = 1)
M$Worker <- factor(M$Worker, levels = 1:6); M$Machine <- factor(M$Machine, levels = c("A", "B", "C"))
cb <- read.csv(paste0(d, "cbpp.csv"), row.names = 1)
cb$herd <- factor(cb$herd, levels = 1:15); cb$period <- factor(cb$period, levels = 1:4)

nn <- function(x) unname(as.numeric(x))
cols <- function(m) { m <- as.matrix(m); setNames(lapply(seq_len(ncol(m)), function(j) nn(m[, j])), colnames(m)) }

# Cook's distance from leave-one-out refits:
# C_k = sum_i w_i (mu_i^[k] - mu_i)^2 / (phi V(mu_i)) / p, p = rank, phi and V from the full fit.
cooks_refit <- function(m) {
  fam <- family(m); mu <- fitted(m); w <- weights(m, "prior"); if (is.null(w)) w <- rep(1, length(mu))
  phi <- if (inherits(m, "glm")) summary(m)$dispersion else summary(m)$sigma^2
  X <- model.matrix(m); off <- model.offset(model.frame(m)); if (is.null(off)) off <- 0
  V <- fam$variance(mu)
  sapply(seq_along(mu), function(k) {
    mk <- update(m, subset = -k)
    b <- coef(mk); b[is.na(b)] <- 0
    muk <- fam$linkinv(drop(X %*% b) + off)
    sum(w * (muk - mu)^2 / (phi * V)) / m$rank
  })
}

ref <- function(name, m, dataset, notes = "", refit = TRUE) {
  im <- influence.measures(m)
  is_glm <- inherits(m, "glm")
  types <- if (is_glm) c("response", "working", "pearson", "deviance") else c("response", "working", "pearson", "deviance")
  resid <- setNames(lapply(types, function(t) nn(residuals(m, type = t))), types)
  phi <- if (is_glm) summary(m)$dispersion else summary(m)$sigma^2
  resid$pearson_scaled <- nn(residuals(m, type = "pearson")) / sqrt(phi)
  resid$standardized <- nn(rstandard(m))
  resid$standardized_pearson <- if (is_glm) nn(rstandard(m, type = "pearson")) else nn(rstandard(m))
  resid$studentized <- nn(rstudent(m))
  part <- residuals(m, type = "partial")
  sw_d <- shapiro.test(residuals(m, type = "deviance"))
  sw_p <- shapiro.test(residuals(m, type = "pearson"))
  res <- list(
    name = name, dataset = dataset, notes = notes,
    call = paste(deparse(m$call, width.cutoff = 500L), collapse = " "),
    family = family(m)$family, link = family(m)$link, is_lm = !is_glm,
    row_labels = rownames(model.frame(m)),
    active_rows = names(hatvalues(m)),
    coef = as.list(coef(m)), dispersion = phi, rank = m$rank, df_resid = df.residual(m),
    residuals = resid,
    partial = cols(part),
    hat = nn(hatvalues(m)),
    cooks = nn(cooks.distance(m)),
    cooks_refit = if (refit) nn(cooks_refit(m)) else NULL,
    dfbeta = cols(dfbeta(m)),
    dfbetas = cols(dfbetas(m)),
    dffits = nn(dffits(m)),
    covratio = nn(covratio(m)),
    sigma_i = nn(influence(m, do.coef = FALSE)$sigma),
    infmat = cols(im$infmat),
    is_inf = lapply(cols(im$is.inf), as.logical),
    shapiro = list(deviance = c(sw_d$statistic[[1]], sw_d$p.value),
                   pearson = c(sw_p$statistic[[1]], sw_p$p.value))
  )
  writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE),
             paste0(out, name, ".json"))
}

# Poisson, the notes' glm (rounded counts), offset log(n)
ref("ceb_poisson_rounded",
    glm(round(y) ~ dur + res + educ + offset(log(n)), family = poisson, data = ceb),
    "ceb", "chapter 3.6: cooks.distance of the rounded fit")
# Poisson on the unrounded counts (the notes' by-hand IRLS); R warns about non-integer x
ref("ceb_poisson_unrounded",
    suppressWarnings(glm(y ~ dur + res + educ + offset(log(n)), family = poisson, data = ceb)),
    "ceb", "chapter 3.5: Shapiro-Wilk of deviance and Pearson residuals (unrounded y)")
# Binomial with a two-column response
ref("cbpp_binomial", glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = cb),
    "cbpp", "binomial cbind(): y proportions, prior weights = size")
# Gamma (estimated dispersion: rstudent divides by sigma_i)
ref("sleepstudy_gamma", glm(Reaction ~ Days, family = Gamma(link = "log"), data = ss),
    "sleepstudy", "Gamma log link, dispersion estimated by Pearson X^2/(n-p)")
# Linear models
ref("sleepstudy_lm", lm(Reaction ~ Days, data = ss), "sleepstudy", "simple linear regression")
ref("machines_lm", lm(score ~ Machine + Worker, data = M), "Machines", "two factors, additive")
ref("sleepstudy_lm_weighted", lm(Reaction ~ Days, data = ss, weights = Days + 1), "sleepstudy",
    "weights = Days + 1")
# Rank deficient: Days2 = 2 * Days is aliased (coefficient NA); influence uses the rank
ss$Days2 <- 2 * ss$Days
ref("sleepstudy_lm_aliased", lm(Reaction ~ Days + Days2, data = ss), "sleepstudy",
    "Days2 = 2 * Days aliased")
# Zero prior weights: those cases take no part in the fit and R drops them from influence()
cb$w <- cb$size; cb$w[c(1, 5)] <- 0
ref("cbpp_binomial_zero_weights", glm(incidence / size ~ period, family = binomial, data = cb, weights = w),
    "cbpp", "weights = size, but 0 for rows 1 and 5", refit = FALSE)

# Plot helpers: lowess (panel.smooth), qqnorm scores and qqline of plot.lm
x <- ss$Days + ss$Reaction / 1000; y <- residuals(lm(Reaction ~ Days, data = ss))
small <- c(2.1, -0.3, 0.8, 1.7, -1.2, 0.05, 3.3)
ql <- function(v) { yq <- quantile(v, c(0.25, 0.75)); xq <- qnorm(c(0.25, 0.75))
  slope <- diff(yq) / diff(xq); c(yq[[1]] - slope[[1]] * xq[1], slope[[1]]) }
writeLines(toJSON(list(
  lowess_x = x, lowess_y = nn(y),
  lowess_iter0 = lowess(x, y, iter = 0), lowess_iter3 = lowess(x, y, iter = 3),
  small = small, qqnorm_small = qqnorm(small, plot.it = FALSE)$x, qqline_small = ql(small),
  qqnorm_y = qqnorm(y, plot.it = FALSE)$x, qqline_y = ql(y)
), digits = NA, auto_unbox = TRUE, pretty = TRUE), paste0(out, "plot_helpers.json"))

# hist(freq = FALSE) of residuals: Sturges classes, pretty() breaks, right-closed cells
h_ceb <- hist(residuals(glm(round(y) ~ dur + res + educ + offset(log(n)), family = poisson, data = ceb)),
              plot = FALSE)
h_lm <- hist(residuals(lm(Reaction ~ Days, data = ss)), plot = FALSE)
pr <- list(c(0, 1, 5), c(-2.296, 3.678, 7), c(0.00123, 0.00456, 5), c(-110.85, 139.95, 9),
           c(3, 3, 5), c(-1e-3, 2e5, 4))
writeLines(toJSON(list(
  hist_ceb = list(x = nn(residuals(glm(round(y) ~ dur + res + educ + offset(log(n)), family = poisson, data = ceb))),
                  breaks = h_ceb$breaks, density = h_ceb$density),
  hist_lm = list(x = nn(residuals(lm(Reaction ~ Days, data = ss))), breaks = h_lm$breaks, density = h_lm$density),
  pretty = lapply(pr, function(a) list(lo = a[1], up = a[2], n = a[3], value = pretty(c(a[1], a[2]), n = a[3])))
), digits = NA, auto_unbox = TRUE, pretty = TRUE), paste0(out, "hist_pretty.json"))
# Negative binomial at MASS::glm.nb's theta.
# (a) cbpp_negbin_glm: a plain glm() with family negative.binomial(theta): summary.glm estimates
#     the dispersion by Pearson's X^2/(n-p), as for any family other than poisson and binomial.
# (b) cbpp_negbin: glm.nb semantics (class "negbin": dispersion 1), refitted at glm.nb's theta with a
#     tight tolerance (glm.nb's own last IRLS stops at 1e-8 from the previous fit's start).
# In both, rstudent divides by sigma_i: the family is "Negative Binomial(2.0508)".
suppressMessages(library(MASS))
theta_nb <- glm.nb(incidence ~ period + offset(log(size)), data = cb)$theta
add_theta <- function(name) {
  f <- paste0(out, name, ".json"); x <- fromJSON(f); x$theta <- theta_nb
  writeLines(toJSON(x, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = TRUE), f)
}
m_nb <- glm(incidence ~ period + offset(log(size)), family = negative.binomial(theta_nb), data = cb)
ref("cbpp_negbin_glm", m_nb, "cbpp",
    paste("glm(family = negative.binomial(", format(theta_nb, digits = 15), "))"), refit = FALSE)
add_theta("cbpp_negbin_glm")
m_nb <- glm(incidence ~ period + offset(log(size)), family = negative.binomial(theta_nb), data = cb,
            control = glm.control(epsilon = 1e-14, maxit = 100))
m_nb$theta <- theta_nb
class(m_nb) <- c("negbin", class(m_nb))
ref("cbpp_negbin", m_nb, "cbpp", "glm.nb at its theta (dispersion 1), converged to 1e-14", refit = FALSE)
add_theta("cbpp_negbin")
cat("wrote", length(list.files(out, pattern = "json$")), "fixtures to", out, "\n")
