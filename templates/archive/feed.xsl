<?xml version="1.0" encoding="UTF-8"?>
{#- Makes the Atom feeds readable in a browser: a page that says what a feed is, gives its
    address to paste into a feed reader and lists its entries. Feed readers ignore it. -#}
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:atom="http://www.w3.org/2005/Atom" exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>
  <xsl:template match="/atom:feed">
    <html lang="{{ site.language }}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="atom:title"/> (Atom feed)</title>
        <link rel="stylesheet" href="{{ site.url('static/archive.css') }}"/>
        <link rel="stylesheet" href="{{ site.url('static/look.css') }}"/>
        <link rel="icon" href="{{ site.url('static/favicon.svg') }}" type="image/svg+xml"/>
      </head>
      <body>
        <header class="site-header">
          <div class="wrap header-inner">
            <a class="brand" href="{{ site.url() }}">{{ site.name | e }}</a>
          </div>
        </header>
        <main id="main" class="wrap feed-page">
          <header class="page-header">
            <p class="kicker">Atom feed</p>
            <h1><xsl:value-of select="atom:title"/></h1>
            <p class="lead">This is a feed: paste its address into a feed reader to be told of every new summary.</p>
            <p class="feed-address"><code><xsl:value-of select="atom:link[@rel='self']/@href"/></code></p>
            <p><a href="{atom:link[@rel='alternate']/@href}">The same summaries as a web page</a></p>
          </header>
          <xsl:choose>
            <xsl:when test="atom:entry">
              <ol class="results">
                <xsl:for-each select="atom:entry">
                  <li>
                    <h2><a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h2>
                    <p class="meta"><xsl:value-of select="substring(atom:published, 1, 7)"/></p>
                    <p><xsl:value-of select="atom:summary"/></p>
                  </li>
                </xsl:for-each>
              </ol>
            </xsl:when>
            <xsl:otherwise>
              <p class="note">No summary in this feed yet.</p>
            </xsl:otherwise>
          </xsl:choose>
        </main>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
