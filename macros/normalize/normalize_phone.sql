{#-
    E.164 digits without '+' for the default country, or null. The same rules as
    matcher.normalize.normalize_phone (see _normalize__macros.yml). `offset 0` keeps
    PostgreSQL from inlining the steps, so each is computed once per row.
-#}
{%- macro normalize_phone(raw, country_code=none, national_lengths=none) -%}
    {%- set cc = (country_code if country_code is not none else var('phone_country_code', '51')) | string -%}
    {%- set lengths = national_lengths if national_lengths is not none else var('phone_national_lengths', [8, 9]) -%}
    {%- if lengths is string -%}
        {%- set lengths = lengths.replace(',', ' ').split() -%}
    {%- elif lengths is number -%}
        {%- set lengths = [lengths] -%}
    {%- endif -%}
    {%- set lengths_sql = [] -%}
    {%- for length in lengths -%}
        {%- if (length | string) | reject('in', '0123456789') | list or (length | int) < 1 or (length | int) > 15 -%}
            {{ exceptions.raise_compiler_error("phone_national_lengths must be integers 1..15, got " ~ lengths) }}
        {%- endif -%}
        {%- do lengths_sql.append(length | int | string) -%}
    {%- endfor -%}
    {%- if not cc or cc | reject('in', '0123456789') | list or not lengths_sql -%}
        {{ exceptions.raise_compiler_error("phone_country_code must be ASCII digits and phone_national_lengths not empty, got " ~ cc) }}
    {%- endif -%}
    {%- set in_lengths = "in (" ~ lengths_sql | join(", ") ~ ")" -%}
    {%- set cc_len = cc | length -%}
(
    select
        case
            when phone_e164.e164 like '{{ cc }}%' then
                case
                    when char_length(phone_e164.e164) - {{ cc_len }} {{ in_lengths }}
                        and substr(phone_e164.e164, {{ cc_len + 1 }}, 1) <> '0'
                        and btrim(
                            substr(phone_e164.e164, {{ cc_len + 1 }}),
                            substr(phone_e164.e164, {{ cc_len + 1 }}, 1)
                        ) <> ''
                        then phone_e164.e164
                end
            when char_length(phone_e164.e164) between 8 and 15
                and phone_e164.e164 not like '0%'
                and btrim(phone_e164.e164, left(phone_e164.e164, 1)) <> ''
                then phone_e164.e164
        end
    from (
        select
            -- a trunk 0 after the country code is dropped: +51 (0) 1 234 5678
            regexp_replace(
                case
                    when phone_digits.has_plus then phone_digits.digits
                    when phone_digits.digits like '00%' then substr(phone_digits.digits, 3)
                    when phone_digits.digits like '{{ cc }}%'
                        and (
                            char_length(phone_digits.digits) - {{ cc_len }} {{ in_lengths }}
                            or (
                                phone_digits.digits like '{{ cc }}0%'
                                and char_length(phone_digits.digits) - {{ cc_len + 1 }} {{ in_lengths }}
                            )
                        )
                        then phone_digits.digits
                    when phone_digits.digits like '0%'
                        and char_length(phone_digits.digits) - 1 {{ in_lengths }}
                        then '{{ cc }}' || substr(phone_digits.digits, 2)
                    when char_length(phone_digits.digits) {{ in_lengths }}
                        then '{{ cc }}' || phone_digits.digits
                end,
                '^{{ cc }}0',
                '{{ cc }}'
            ) as e164
        from (
            select
                regexp_replace(phone_raw.raw_text, '[^0-9]', '', 'g') as digits,
                ltrim(phone_raw.raw_text, e' \t\r\n') like '+%' as has_plus
            from (select ({{ raw }})::text as raw_text) as phone_raw
            where char_length(phone_raw.raw_text) <= 64
            offset 0
        ) as phone_digits
        offset 0
    ) as phone_e164
)
{%- endmacro %}
